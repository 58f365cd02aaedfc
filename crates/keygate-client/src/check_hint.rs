//! The fix to show under each refusal of the start-up check.

use crate::check::Refusal;

impl Refusal {
    /// The fix to show under the message: where to put a key, or which key to ask for.
    ///
    /// ```
    /// use keygate_client::Refusal;
    ///
    /// let none = Refusal::NoCredential { env_var: "MY_KEY".to_owned() };
    /// assert!(none.hint().starts_with("hint: export MY_KEY=<your key>"));
    /// ```
    pub fn hint(&self) -> String {
        match self {
            Self::NoCredential { env_var } => format!(
                "hint: export {env_var}=<your key>, or add \"{env_var}\": \"<your key>\" to the \
                 env block of your server in .mcp.json (and keep .mcp.json out of git)"
            ),
            Self::Malformed { origin, .. } => format!(
                "hint: the {origin} does not hold a whole keygate key; copy the key again \
                 (it is shown once when created or rotated)"
            ),
            Self::Rejected { origin, .. } => format!(
                "hint: ask your tenant's owner for a new key (keygate keys create or keys \
                 rotate) and put it in the {origin}"
            ),
            Self::NoProject { .. } | Self::ManyProjects { .. } => {
                "hint: create a key for exactly one project: keygate keys create --kind user \
                 --project <name> --scope … --name <name>"
                    .to_owned()
            }
        }
    }
}
