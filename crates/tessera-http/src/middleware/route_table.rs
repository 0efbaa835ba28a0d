//! Which route a request is for, known before the router runs: the front
//! door ([`super::front_door`]) wraps the router whole instead of each
//! route (axum boxes and clones a per-route layer stack on every request),
//! so it finds the route template itself, in a table made from the same
//! route definitions the router is made from (the OpenAPI paths of
//! `app()`), with the same matcher (`matchit`, axum's own).
//!
//! A route's template (`/v1/me/sessions/{id}`), never the path, is what
//! logs and metrics name, so ids never reach either.

use std::sync::Arc;

use utoipa::openapi::OpenApi;

/// What the front door knows of one route.
#[derive(Debug)]
pub struct Route {
    /// Its position in the table (the metrics' series index).
    pub index: usize,
    /// The template, as registered.
    pub template: Arc<str>,
    /// Whether browsers on the allowed origins may call it (CORS).
    pub cross_origin: bool,
}

/// The routes, by template.
#[derive(Debug)]
pub struct RouteTable {
    matcher: matchit::Router<usize>,
    routes: Vec<Route>,
}

impl RouteTable {
    /// The routes of `api` (every route of the router); those of
    /// `cross_origin` (a part of them) get CORS.
    pub fn new(api: &OpenApi, cross_origin: &OpenApi) -> Result<Self, String> {
        let mut matcher = matchit::Router::new();
        let mut routes = Vec::new();
        for template in api.paths.paths.keys() {
            let index = routes.len();
            // The router registers an empty path as `/`.
            let path = if template.is_empty() { "/" } else { template };
            matcher
                .insert(path, index)
                .map_err(|e| format!("route {template}: {e}"))?;
            routes.push(Route {
                index,
                template: path.into(),
                cross_origin: cross_origin.paths.paths.contains_key(template),
            });
        }
        Ok(Self { matcher, routes })
    }

    /// The route `path` is for, if any.
    pub fn find(&self, path: &str) -> Option<&Route> {
        let found = self.matcher.at(path).ok()?;
        self.routes.get(*found.value)
    }

    /// The route at `index`.
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// A document with these paths (each a bare GET), for tests.
#[cfg(test)]
pub(crate) fn api_of(paths: &[&str]) -> OpenApi {
    use utoipa::openapi::OpenApiBuilder;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
    let mut builder = PathsBuilder::new();
    for p in paths {
        builder = builder.path(
            *p,
            PathItem::new(HttpMethod::Get, OperationBuilder::new().build()),
        );
    }
    OpenApiBuilder::new().paths(builder.build()).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_found_by_path_and_flagged() -> Result<(), String> {
        let table = RouteTable::new(
            &api_of(&[
                "/healthz",
                "/v1/me",
                "/v1/me/sessions/{id}",
                "/assets/{name}",
            ]),
            &api_of(&["/v1/me", "/v1/me/sessions/{id}"]),
        )?;
        assert_eq!(table.len(), 4);
        let route = |p: &str| {
            table
                .find(p)
                .map(|r| (r.template.to_string(), r.cross_origin))
        };
        assert_eq!(route("/healthz"), Some(("/healthz".into(), false)));
        assert_eq!(route("/v1/me"), Some(("/v1/me".into(), true)));
        assert_eq!(
            route("/v1/me/sessions/abc-123"),
            Some(("/v1/me/sessions/{id}".into(), true))
        );
        assert_eq!(route("/v1/me/"), None);
        assert_eq!(route("/v1/me/sessions/"), None);
        assert_eq!(route("/nowhere"), None);
        assert_eq!(route(""), None);
        assert!(RouteTable::new(&api_of(&["/a/{x}", "/a/{y}"]), &api_of(&[])).is_err());
        Ok(())
    }
}
