//! The metrics label of each route, recorded where the route is added
//! ([`Table::route`]), so the route table is written once.
//!
//! The layer that counts requests runs outside the router (a request refused by the
//! Origin check is counted too), so a request's label is found by matching its path
//! against the recorded route paths, as the router matches them: a `{param}` segment
//! is one non-empty segment, a `{*rest}` segment the non-empty rest of the path, the
//! rest is literal.

use axum::Router;
use axum::http::Method;
use axum::routing::MethodRouter;

/// The label of a route: one for every method, or another one for `POST`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Label {
    any: &'static str,
    post: Option<&'static str>,
}

impl Label {
    /// `label` for every method.
    pub(crate) const fn all(label: &'static str) -> Self {
        Self {
            any: label,
            post: None,
        }
    }

    /// `label` for `POST` requests instead.
    pub(crate) const fn post(self, label: &'static str) -> Self {
        Self {
            post: Some(label),
            ..self
        }
    }
}

/// Every route path with its label, in the order the routes were added.
#[derive(Debug, Default)]
pub(crate) struct RouteLabels(Vec<(&'static str, Label)>);

impl RouteLabels {
    /// The label of a request for `path`: its route's, `other` when no route has
    /// that path.
    pub(crate) fn of(&self, path: &str, method: &Method) -> &'static str {
        let Some((_, label)) = self.0.iter().find(|(route, _)| matches(route, path)) else {
            return "other";
        };
        match label.post {
            Some(post) if method == Method::POST => post,
            _ => label.any,
        }
    }
}

impl RouteLabels {
    /// Every route path, in the order the routes were added.
    #[cfg(test)]
    pub(crate) fn paths(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(path, _)| *path)
    }
}

/// Whether the router would route `path` to `route`.
fn matches(route: &str, path: &str) -> bool {
    let mut path = path.split('/');
    for part in route.split('/') {
        let Some(given) = path.next() else {
            return false;
        };
        // A `{*rest}` segment takes the rest of the path, as the router's wildcard does.
        if part.starts_with("{*") {
            return !given.is_empty();
        }
        let matched = if part.starts_with('{') {
            !given.is_empty()
        } else {
            part == given
        };
        if !matched {
            return false;
        }
    }
    path.next().is_none()
}

impl From<&'static str> for Label {
    fn from(label: &'static str) -> Self {
        Self::all(label)
    }
}

/// A router being built, each route added with its metrics label: adding a route is
/// one line, [`Table::route`].
#[derive(Debug)]
pub(crate) struct Table<'a, S> {
    router: Router<S>,
    labels: &'a mut RouteLabels,
}

impl<'a, S: Clone + Send + Sync + 'static> Table<'a, S> {
    /// An empty router whose routes' labels go to `labels`.
    pub(crate) fn new(labels: &'a mut RouteLabels) -> Self {
        Self {
            router: Router::new(),
            labels,
        }
    }

    /// [`Router::route`], its requests counted under `label`.
    pub(crate) fn route(
        mut self,
        label: impl Into<Label>,
        path: &'static str,
        service: MethodRouter<S>,
    ) -> Self {
        self.labels.0.push((path, label.into()));
        self.router = self.router.route(path, service);
        self
    }

    /// The router.
    pub(crate) fn into_router(self) -> Router<S> {
        self.router
    }
}
