//! The tower layer: layer (configuration), service, and its response future.

mod future;
mod layer;
mod service;

pub use self::future::ResponseFuture;
pub use self::layer::AuthLayer;
pub use self::service::Auth;
