//! The HTTP surface: one router per endpoint group (one Lambda each), plus the routes every
//! function serves (health, OpenAPI). [`app`] wraps them in the shared layers, so Lambda, the
//! local server and the tests run the very same stack.

mod account;
mod admin;
mod agents;
mod analytics;
mod billing;
mod calls;
mod conditional;
mod contact_lookup;
mod contacts;
mod csv;
mod dashboard;
mod errors;
mod extract;
mod leads;
mod openapi;
mod pagination;
mod profile;
mod system;
mod webhooks;

use std::time::Duration;

use axum::{
    extract::DefaultBodyLimit,
    http::{header, HeaderName, Method, Request},
    Router,
};
use tower_http::{
    compression::{predicate::SizeAbove, CompressionLayer},
    cors::CorsLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
    CompressionLevel,
};
use utoipa_axum::router::OpenApiRouter;

pub use extract::{AppJson, AppQuery, ClientAddress, Id};
pub use openapi::document as openapi_document;
pub use pagination::{decode_cursor, encode_cursor, ListResponse, Page, PageQuery, Pagination};

use tower::ServiceExt;

use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The endpoint groups; each is deployed as its own function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// /admin/*: the admin panel (users, credits, agents, configuration, events, analytics).
    Admin,
    /// /api/agents/* and /agents/*: agent CRUD, proxied to ElevenLabs.
    Agents,
    /// /auth/*: registration, sign-in (password and social), password reset, the profile.
    Auth,
    /// /billing/* and /api/user/credits: balance and ledger.
    Billing,
    /// /api/calls/*, /api/leads/*, /api/dashboard/*, /analytics/*: calls, transcripts,
    /// recordings, outbound and batch calls, leads, dashboards, exports.
    Calls,
    /// /api/contacts/* and /contacts/*: contact CRUD and spreadsheet upload.
    Contacts,
    /// /webhooks/*, /api/contact-lookup and /api/lookup: what ElevenLabs calls (webhook-ingest).
    Webhooks,
}

impl Group {
    pub const ALL: [Group; 7] = [
        Group::Admin,
        Group::Agents,
        Group::Auth,
        Group::Billing,
        Group::Calls,
        Group::Contacts,
        Group::Webhooks,
    ];

    /// The group's part of the OpenAPI document: every annotated route [`app`] serves for it
    /// but its [`aliases`](Self::aliases) (which the whole document adds), for tests that walk
    /// every route.
    pub fn openapi(self) -> utoipa::openapi::OpenApi {
        (self.router::<Describe>())().split_for_parts().1
    }

    /// design.md's paths for what this group serves under `/api`: each alias is forwarded to
    /// its documented path, so both always answer the same.
    pub fn aliases(self) -> &'static [Alias] {
        match self {
            Group::Agents => &[Alias::Prefix {
                alias: "/agents",
                serves: "/api/agents",
            }],
            Group::Contacts => &[Alias::Prefix {
                alias: "/contacts",
                serves: "/api/contacts",
            }],
            Group::Calls => &[Alias::Exact {
                alias: "/analytics/dashboard",
                serves: "/api/dashboard/overview",
            }],
            // design.md names the lookup both ways (webhooks and contacts components).
            Group::Webhooks => &[Alias::Prefix {
                alias: "/api/lookup",
                serves: "/api/contact-lookup",
            }],
            Group::Admin | Group::Auth | Group::Billing => &[],
        }
    }

    /// What this group's function serves: the group's routes with their handlers. Made in a
    /// `const` (`const SERVED: Served = Group::Admin.served();`), it names only this group's
    /// handlers, so a function links none of the other groups' code.
    pub const fn served(self) -> Served {
        Served {
            group: self,
            routes: self.router::<Serve>(),
        }
    }

    /// The group's routes: what its function serves (api-auth also serves the OpenAPI
    /// document).
    const fn router<M: Mode>(self) -> fn() -> OpenApiRouter<AppState> {
        match self {
            Group::Admin => admin::router::<M>,
            Group::Agents => agents::router::<M>,
            Group::Auth => auth_routes::<M>,
            Group::Billing => billing::router::<M>,
            Group::Calls => calls_routes::<M>,
            Group::Contacts => contacts::router::<M>,
            Group::Webhooks => webhooks::router::<M>,
        }
    }
}

fn auth_routes<M: Mode>() -> OpenApiRouter<AppState> {
    profile::router::<M>()
        .merge(account::router::<M>())
        .merge(system::document_router::<M>())
}

fn calls_routes<M: Mode>() -> OpenApiRouter<AppState> {
    calls::router::<M>()
        .merge(leads::router::<M>())
        .merge(dashboard::router::<M>())
        .merge(analytics::router::<M>())
        .merge(csv::router::<M>())
}

/// A group's routes as its function serves them; see [`Group::served`].
#[derive(Clone, Copy)]
pub struct Served {
    group: Group,
    routes: fn() -> OpenApiRouter<AppState>,
}

/// How a router is built: [`Serve`] attaches the handlers; [`Describe`] keeps only their
/// OpenAPI paths and schemas, so the document (which names every group's routes) does not
/// link every group's handlers into the function serving it.
pub trait Mode {
    const HANDLERS: bool;
}

pub enum Serve {}

impl Mode for Serve {
    const HANDLERS: bool = true;
}

pub enum Describe {}

impl Mode for Describe {
    const HANDLERS: bool = false;
}

/// `utoipa_axum::routes!` in a router built in mode `$mode` ([`Mode`]): in [`Serve`] the
/// handlers are routed at their annotated paths and methods but their OpenAPI operations and
/// schemas are not built (the function throws the document away; building it linked every
/// request and response type's schema code); in [`Describe`] the handlers are left out (the
/// method router is empty) but their paths and schemas are kept, read by utoipa_axum's own
/// `@resolve_types` arm. A test checks both modes give the same paths and methods.
macro_rules! routes {
    ($mode:ty; $($handler:ident),+ $(,)?) => {
        if <$mode as $crate::http::Mode>::HANDLERS {
            use utoipa_axum::PathItemExt as _;
            let mut paths = utoipa::openapi::path::Paths::new();
            let mut method_router = axum::routing::MethodRouter::new();
            $(
                utoipa_axum::paste! {
                    let path = <[<__path_ $handler>] as utoipa::Path>::path();
                    let types = <[<__path_ $handler>] as utoipa::Path>::methods();
                }
                method_router = types.iter().fold(method_router, |router, method| {
                    router.on(method.to_method_filter(), $handler)
                });
                paths.add_path_operation(&path, types, utoipa::openapi::path::Operation::new());
            )+
            (Vec::new(), paths, method_router)
        } else {
            let mut paths = utoipa::openapi::path::Paths::new();
            let mut schemas = Vec::<(
                String,
                utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
            )>::new();
            $(
                let (path, item, types) = utoipa_axum::routes!(@resolve_types $handler : schemas);
                paths.add_path_operation(&path, types, item);
            )+
            (schemas, paths, axum::routing::MethodRouter::new())
        }
    };
}
pub(crate) use routes;

/// A path of design.md that names what the API documents under another path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alias {
    /// `alias` and everything under it, as the same path under `serves`.
    Prefix {
        alias: &'static str,
        serves: &'static str,
    },
    /// Exactly `alias`, as `serves`.
    Exact {
        alias: &'static str,
        serves: &'static str,
    },
}

impl Alias {
    /// The path at which this alias serves the documented `path`, if it covers it.
    pub fn of(self, path: &str) -> Option<String> {
        match self {
            Alias::Prefix { alias, serves } => {
                let rest = path.strip_prefix(serves)?;
                (rest.is_empty() || rest.starts_with('/')).then(|| format!("{alias}{rest}"))
            }
            Alias::Exact { alias, serves } => (path == serves).then(|| alias.to_owned()),
        }
    }

    /// Adds the alias to `outer`, forwarding to `inner` (the routes without aliases) with the
    /// path rewritten; the query string is kept.
    fn forward(self, outer: Router, inner: Router) -> Router {
        match self {
            // Under nest_service the request's path is what follows the alias.
            Alias::Prefix { alias, serves } => outer.nest_service(
                alias,
                inner.map_request(move |req| rewritten(req, serves, true)),
            ),
            Alias::Exact { alias, serves } => outer.route_service(
                alias,
                inner.map_request(move |req| rewritten(req, serves, false)),
            ),
        }
    }
}

/// The request with its path replaced by `serves` (followed by its own path when
/// `keep_path`), its query string kept.
fn rewritten(
    mut req: Request<axum::body::Body>,
    serves: &str,
    keep_path: bool,
) -> Request<axum::body::Body> {
    let rest = if keep_path {
        req.uri().path().trim_end_matches('/')
    } else {
        ""
    };
    let uri = match req.uri().query() {
        Some(query) => format!("{serves}{rest}?{query}"),
        None => format!("{serves}{rest}"),
    };
    if let Ok(uri) = uri.parse() {
        *req.uri_mut() = uri;
    }
    req
}

/// Every group's routes with their OpenAPI paths, described (no handlers, no state needed).
fn described(groups: &[Group]) -> OpenApiRouter<AppState> {
    groups
        .iter()
        .fold(system::router::<Describe>(), |router, group| {
            router.merge((group.router::<Describe>())())
        })
}

/// The complete application serving the given groups ([`Group::served`]), with every shared
/// layer.
pub fn app(state: AppState, served: &[Served]) -> Router {
    let config = state.config().clone();
    let routes = served
        .iter()
        .fold(system::router::<Serve>(), |router, served| {
            router.merge((served.routes)())
        });
    let (router, _) = routes.split_for_parts();
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let cors = config.frontend_origin.map(|origin| {
        CorsLayer::new()
            .allow_origin([origin])
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                header::CACHE_CONTROL,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-stack-access-token"),
                request_id.clone(),
            ])
            // Retry-After says how long a 429 or a busy database asks to wait, and
            // Content-Disposition names a CSV download: a page reads neither unless exposed.
            .expose_headers([
                request_id.clone(),
                header::ETAG,
                header::RETRY_AFTER,
                header::CONTENT_DISPOSITION,
            ])
            .max_age(Duration::from_secs(600))
    });
    let inner = router.fallback(errors::unknown_route).with_state(state);
    let aliases = served.iter().flat_map(|served| served.group.aliases());
    aliases
        .fold(inner.clone(), |outer, alias| {
            alias.forward(outer, inner.clone())
        })
        .layer(axum::middleware::from_fn(one_connection))
        .layer(DefaultBodyLimit::max(config.max_json_body_bytes))
        .layer(axum::middleware::from_fn(errors::normalize))
        // A Lambda response is at most 6 MB: a year of a busy tenant's daily analytics per
        // agent passes it as JSON, not gzipped (browsers always accept gzip). Only large
        // answers, quickly: a small one would pay more in time than it saves.
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Fastest)
                .compress_when(SizeAbove::new(u16::MAX)),
        )
        .layer(tower::util::option_layer(cors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get(REQUEST_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let path = loggable_path(req.uri().path());
                tracing::info_span!("request", method = %req.method(), %path, request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_unsafe_request_id))
}

/// A handler reuses the connection its request's authentication checked out.
async fn one_connection(
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    crate::db::with_request_connection(next.run(req)).await
}

/// The longest client-chosen request id kept; longer ones are replaced by our own.
const MAX_REQUEST_ID_LEN: usize = 64;

/// A client's `x-request-id` is echoed and logged, so only a short token of safe characters is
/// kept (no log injection, no megabyte ids); anything else is dropped and one is generated.
async fn drop_unsafe_request_id(mut req: Request<axum::body::Body>) -> Request<axum::body::Body> {
    let safe = |id: &[u8]| {
        !id.is_empty()
            && id.len() <= MAX_REQUEST_ID_LEN
            && id
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    };
    if let Some(id) = req.headers().get(REQUEST_ID_HEADER) {
        if !safe(id.as_bytes()) {
            req.headers_mut().remove(REQUEST_ID_HEADER);
        }
    }
    req
}

/// The path as logged: a caller's phone number in the contact lookup is masked but for its
/// last two digits.
fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    const LOOKUPS: [&str; 2] = ["/api/contact-lookup/", "/api/lookup/"];
    let found = LOOKUPS
        .iter()
        .find_map(|prefix| Some((*prefix, path.strip_prefix(prefix)?)));
    match found {
        Some((prefix, phone)) if !phone.is_empty() => {
            let keep = phone.len().saturating_sub(2);
            let masked: String = phone
                .char_indices()
                .map(|(i, c)| {
                    if i < keep && c.is_ascii_alphanumeric() {
                        '*'
                    } else {
                        c
                    }
                })
                .collect();
            format!("{prefix}{masked}").into()
        }
        _ => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Group, Serve};

    /// The document is built from the described routers (no handlers): each must document
    /// exactly the paths and methods its function serves.
    #[test]
    fn every_group_described_documents_what_it_serves() {
        fn routes(document: utoipa::openapi::OpenApi) -> Vec<(String, Vec<String>)> {
            let paths = serde_json::to_value(document.paths).expect("serializes");
            let paths = paths.as_object().expect("paths").clone();
            paths
                .into_iter()
                .map(|(path, item)| {
                    let item = item.as_object().expect("path item").clone();
                    (path, item.into_iter().map(|(method, _)| method).collect())
                })
                .collect()
        }
        for group in Group::ALL {
            let (_, served) = (group.router::<Serve>())().split_for_parts();
            let served = routes(served);
            assert!(!served.is_empty(), "{group:?}");
            assert_eq!(served, routes(group.openapi()), "{group:?}");
        }
    }

    #[test]
    fn lookup_phone_numbers_are_masked_in_logged_paths() {
        assert_eq!(
            super::loggable_path("/api/contact-lookup/%2B14155550123"),
            "/api/contact-lookup/%***********23"
        );
        assert_eq!(
            super::loggable_path("/api/contact-lookup/+14155550123"),
            "/api/contact-lookup/+*********23"
        );
        assert_eq!(
            super::loggable_path("/api/lookup/+14155550123"),
            "/api/lookup/+*********23"
        );
        assert_eq!(super::loggable_path("/api/calls"), "/api/calls");
    }
}
