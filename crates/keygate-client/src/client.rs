//! The async HTTP client of one keygate server, with one key.

use std::time::Duration;

use keygate_keys::AuditEvent;
use keygate_token::{KeyId, Token};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{
    ApprovalInfo, ApprovalList, ApproveBody, AuditList, CreateKey, CreateProject, IssuedKey,
    KeyInfo, KeyList, ProjectInfo, ProjectList, RejectReason, TokenInfo,
};
use crate::error::Error;

/// A client of keygated's API at one server, presenting one key.
///
/// Every method sends the key as `Authorization: Bearer` (marked sensitive, so it is in
/// no error and no trace). Answers outside 2xx are [`Error::Rejected`] with the
/// server's error body; [`Error::reason`] says why in the contract's words.
#[derive(Debug, Clone)]
pub struct Client {
    server: String,
    http: reqwest::Client,
    key: Token,
}

impl Client {
    /// A client for the server at `server_url` (such as `http://127.0.0.1:8080`;
    /// `https://` certificates are checked against the system's roots) presenting
    /// `key`.
    pub fn new(server_url: &str, key: Token) -> Result<Self, Error> {
        let server = server_url.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&server).map_err(|e| Error::BadUrl {
            server: server_url.to_owned(),
            source: Box::new(e),
        })?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(Error::Scheme {
                    server: server_url.to_owned(),
                    scheme: other.to_owned(),
                });
            }
        }
        // TLS is rustls with the ring provider; installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("keygate-client/", env!("CARGO_PKG_VERSION")));
        if url.scheme() == "http" {
            // The platform verifier refuses to start without a CA store, which plain
            // HTTP does not need (a container without ca-certificates). With no roots at
            // all, a redirect to https:// fails closed.
            builder = builder.tls_certs_only(Vec::new());
        }
        let http = builder.build().map_err(|source| Error::Setup {
            server: server.clone(),
            source,
        })?;
        Ok(Self { server, http, key })
    }

    /// The same server and connection pool, presenting another key.
    #[must_use]
    pub fn with_key(&self, key: Token) -> Self {
        Self {
            server: self.server.clone(),
            http: self.http.clone(),
            key,
        }
    }

    /// The server's base URL, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The key this client presents.
    pub fn key(&self) -> &Token {
        &self.key
    }

    /// `GET /api/v1/token`: what the key is and what it reaches (any valid key).
    pub async fn token(&self) -> Result<TokenInfo, Error> {
        self.get("/api/v1/token", "a token introspection").await
    }

    /// `GET /api/v1/token` as a verdict on the key: what it is and reaches, or why the
    /// server refused it (a 401, as [`RejectReason::of_unauthorized`] reads it).
    pub async fn introspect(&self) -> Result<Result<TokenInfo, RejectReason>, Error> {
        match self.token().await {
            Ok(info) => Ok(Ok(info)),
            Err(Error::Rejected {
                status: 401, body, ..
            }) => Ok(Err(RejectReason::of_unauthorized(&body))),
            Err(err) => Err(err),
        }
    }

    /// `POST /api/v1/keys`: creates a key (owner keys with `keys:admin`).
    pub async fn create_key(&self, key: &CreateKey) -> Result<IssuedKey, Error> {
        self.post("/api/v1/keys", key, "a created key").await
    }

    /// `GET /api/v1/keys`: the tenant's keys.
    pub async fn keys(&self) -> Result<Vec<KeyInfo>, Error> {
        let list: KeyList = self.get("/api/v1/keys", "a list of keys").await?;
        Ok(list.keys)
    }

    /// `GET /api/v1/keys/{id}`.
    pub async fn key_info(&self, id: &KeyId) -> Result<KeyInfo, Error> {
        self.get(&format!("/api/v1/keys/{id}"), "a key").await
    }

    /// `POST /api/v1/keys/{id}/revoke` (idempotent): refused from the next request on.
    pub async fn revoke_key(&self, id: &KeyId) -> Result<KeyInfo, Error> {
        self.post(&format!("/api/v1/keys/{id}/revoke"), &Empty {}, "a key")
            .await
    }

    /// `POST /api/v1/keys/{id}/rotate`: a new key with the same kind, scopes and
    /// projects; the old one stays active until revoked.
    pub async fn rotate_key(&self, id: &KeyId) -> Result<IssuedKey, Error> {
        self.post(
            &format!("/api/v1/keys/{id}/rotate"),
            &Empty {},
            "a created key",
        )
        .await
    }

    /// `POST /api/v1/projects`.
    pub async fn create_project(&self, name: &str) -> Result<ProjectInfo, Error> {
        let body = CreateProject {
            name: name.to_owned(),
        };
        self.post("/api/v1/projects", &body, "a project").await
    }

    /// `GET /api/v1/projects`: the tenant's projects.
    pub async fn projects(&self) -> Result<Vec<ProjectInfo>, Error> {
        let list: ProjectList = self.get("/api/v1/projects", "a list of projects").await?;
        Ok(list.projects)
    }

    /// `GET /api/v1/audit?limit=N`: the newest `limit` events of the tenant's log.
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEvent>, Error> {
        let path = format!("/api/v1/audit?limit={limit}");
        let list: AuditList = self.get(&path, "a list of events").await?;
        Ok(list.events)
    }

    /// `GET /api/v1/approvals`: the pending approvals this key may decide (a user key
    /// with `gates:approve`, never the key that asked).
    pub async fn approvals(&self) -> Result<Vec<ApprovalInfo>, Error> {
        let list: ApprovalList = self.get("/api/v1/approvals", "a list of approvals").await?;
        Ok(list.approvals)
    }

    /// `GET /api/v1/approvals/{id}`.
    pub async fn approval(&self, id: &str) -> Result<ApprovalInfo, Error> {
        let path = format!("/api/v1/approvals/{}", segment(id));
        self.get(&path, "an approval").await
    }

    /// `POST /api/v1/approvals/{id}/approve` with the target's exact name: the agent's
    /// identical retry then proceeds once. A wrong name is refused (422
    /// `target_mismatch`).
    pub async fn approve(&self, id: &str, target: &str) -> Result<ApprovalInfo, Error> {
        let path = format!("/api/v1/approvals/{}/approve", segment(id));
        let body = ApproveBody {
            target: target.to_owned(),
        };
        self.post(&path, &body, "an approval").await
    }

    /// `POST /api/v1/approvals/{id}/deny`.
    pub async fn deny(&self, id: &str) -> Result<ApprovalInfo, Error> {
        let path = format!("/api/v1/approvals/{}/deny", segment(id));
        self.post(&path, &Empty {}, "an approval").await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, what: &'static str) -> Result<T, Error> {
        let request = self.http.get(self.url(path));
        self.send(request, what).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        what: &'static str,
    ) -> Result<T, Error> {
        let request = self.http.post(self.url(path)).json(body);
        self.send(request, what).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &'static str,
    ) -> Result<T, Error> {
        // `bearer_auth` marks the header sensitive; the token is never in our errors.
        let request = request.bearer_auth(self.key.expose());
        let response = request.send().await.map_err(|err| {
            let why = if err.is_connect() {
                "connection failed (is keygated running there?)"
            } else if err.is_timeout() {
                "timed out"
            } else {
                "request failed"
            };
            // Only the innermost cause (an I/O or TLS error, which carries no URL and
            // no header) is shown next to the server address.
            let mut cause: &dyn std::error::Error = &err;
            while let Some(next) = cause.source() {
                cause = next;
            }
            Error::Unreachable {
                server: self.server.clone(),
                why,
                cause: cause.to_string(),
            }
        })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|source| Error::Read {
            server: self.server.clone(),
            source,
        })?;
        if !(200..300).contains(&status) {
            return Err(Error::Rejected {
                server: self.server.clone(),
                status,
                body: serde_json::from_slice(&bytes).unwrap_or_default(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::Decode {
            server: self.server.clone(),
            what,
            source,
        })
    }
}

/// `id` as one path segment: every byte outside the unreserved set percent-encoded, so
/// an id typed by a person can never reach another route (`../keys`, `?x`, `#`).
fn segment(id: &str) -> String {
    // `.` and `..` alone would be resolved as path steps: encode their dots too.
    let dots_only = id == "." || id == "..";
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved && !(dots_only && b == b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `{}` body of the key and approval actions.
#[derive(Serialize)]
struct Empty {}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn ids_stay_one_path_segment() {
        for (id, escaped) in [
            ("ap_01-x.y~z", "ap_01-x.y~z"),
            ("../keys", "..%2Fkeys"),
            ("..", "%2E%2E"),
            ("a?b#c d", "a%3Fb%23c%20d"),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(segment(id), escaped, "{id}");
        }
    }
}
