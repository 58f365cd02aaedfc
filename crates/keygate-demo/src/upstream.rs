//! The platform as keygate-server's in-process upstream (feature `server`).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response};

use crate::platform::Platform;

#[async_trait::async_trait]
impl keygate_server::InProcessUpstream for Platform {
    async fn respond(&self, headers: &HeaderMap, body: Bytes) -> Response<Body> {
        crate::mcp::respond(self, headers, &body)
    }

    fn policy_toml(&self) -> Option<&str> {
        Some(crate::POLICY_TOML)
    }
}
