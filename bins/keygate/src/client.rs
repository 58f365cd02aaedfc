//! keygate-client from synchronous commands: a current-thread runtime, and the view of
//! token introspection that `doctor` reads.

use std::future::Future;

use anyhow::{Context, bail};
use keygate_client::RejectReason;
use keygate_token::Token;
use serde_json::Value;

/// Runs `future` to its end on a current-thread runtime.
pub(crate) fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    Ok(rt.block_on(future))
}

/// Token introspection at one server, for `doctor`.
#[derive(Debug)]
pub(crate) struct Client {
    server: String,
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
    reason: Option<RejectReason>,
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Client {
    /// A client for the server at `server` (such as `http://127.0.0.1:8080`).
    pub(crate) fn new(server: &str) -> anyhow::Result<Self> {
        Ok(Self {
            server: server.to_owned(),
        })
    }

    /// The server's base URL, for messages.
    pub(crate) fn base(&self) -> &str {
        self.server.trim_end_matches('/')
    }

    /// `GET /api/v1/token` with `bearer` (the one path asked for here).
    pub(crate) fn get(&self, path: &str, bearer: &str) -> anyhow::Result<Answer> {
        if path != "/api/v1/token" {
            bail!("{path} is not token introspection");
        }
        let token = Token::parse(bearer).context("the key to introspect")?;
        let client = keygate_client::Client::new(&self.server, token)?;
        match block_on(client.token())? {
            Ok(info) => Ok(Answer {
                status: 200,
                body: serde_json::to_value(info)?,
                reason: None,
            }),
            Err(keygate_client::Error::Rejected { status, body, .. }) => Ok(Answer {
                status,
                reason: Some(RejectReason::of(status, &body)),
                body: serde_json::to_value(body)?,
            }),
            Err(err) => Err(err.into()),
        }
    }
}

/// Why a 401 answer refused the key, in the words of the HTTP contract.
pub(crate) fn rejection_reason(answer: &Answer) -> &str {
    answer
        .reason
        .as_ref()
        .map_or("key_not_found", RejectReason::as_str)
}

/// A readable sentence for a rejection reason.
pub(crate) fn explain_reason(reason: &str) -> &'static str {
    RejectReason::from_code(reason).explain()
}
