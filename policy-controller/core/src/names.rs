//! The names Weft writes into and reads from the cluster: annotations, labels, the injected
//! containers, volumes and ports. Every crate takes them from here.

/// On a namespace or pod: `enabled` injects the proxy, `disabled` never does.
pub const INJECT_ANNOTATION: &str = "weft.dev/inject";

/// The prefix of the per-pod (or per-namespace) proxy settings, `config.weft.dev/<setting>`.
pub const CONFIG_PREFIX: &str = "config.weft.dev/";

/// On a namespace or pod: the default inbound policy of ports no Server describes.
pub const DEFAULT_POLICY_ANNOTATION: &str = "config.weft.dev/default-inbound-policy";

/// On a Service (its ports) or a pod (its container ports): the ports without protocol detection.
pub const OPAQUE_PORTS_ANNOTATION: &str = "config.weft.dev/opaque-ports";

/// On a namespace or pod: inbound ports whose default policy admits only meshed (mTLS) clients
/// (`all-unauthenticated` becomes `all-authenticated`, `cluster-unauthenticated`
/// `cluster-authenticated`), as Linkerd's policy controller does for its spelling of it.
pub const REQUIRE_IDENTITY_PORTS_ANNOTATION: &str =
    "config.weft.dev/proxy-require-identity-inbound-ports";

/// The injected proxy's variable listing its opaque inbound ports (set by Weft's injector from the
/// pod's, or its namespace's, opaque-ports annotation, or the controller's default).
pub const PROXY_OPAQUE_PORTS_ENV: &str = "LINKERD2_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION";

/// On an injected pod: what the injection added, so `weft uninject` can remove exactly that.
pub const STATUS_ANNOTATION: &str = "weft.dev/inject-status";

/// On an injected pod: the proxy version it was injected with.
pub const PROXY_VERSION_ANNOTATION: &str = "weft.dev/proxy-version";

/// On an injected pod: the controller (and version) that injected it.
pub const CREATED_BY_ANNOTATION: &str = "weft.dev/created-by";

/// On an injected pod: the namespace of the control plane that meshes it.
pub const CONTROL_PLANE_NS_LABEL: &str = "weft.dev/control-plane-ns";

/// The injected init container (linkerd2-proxy-init's iptables rules).
pub const INIT_CONTAINER: &str = "weft-init";

/// The injected proxy container (linkerd2-proxy).
pub const PROXY_CONTAINER: &str = "weft-proxy";

/// The proxy's inbound listener: proxy-init redirects inbound TCP to it, and meshed clients send
/// opaque traffic to it directly, over mutual TLS with a transport header naming the app's port
/// (the `opaque_transport` hint of the Destination API).
pub const PROXY_INBOUND_PORT: u16 = 4143;

/// The proxy container's ports: inbound (4143) and admin (4191).
pub const PROXY_PORT_NAMES: [&str; 2] = ["weft-proxy", "weft-admin"];

/// The projected service-account token the proxy presents to `Certify`.
pub const TOKEN_VOLUME: &str = "weft-identity-token";

/// The audience of that token, checked by the controller's TokenReview.
pub const TOKEN_AUDIENCE: &str = "identity.weft.dev";

/// The in-memory volume holding the proxy's key and certificate.
pub const IDENTITY_VOLUME: &str = "weft-identity";

/// The volume for the xtables lock shared by proxy-init's iptables calls.
pub const XTABLES_VOLUME: &str = "weft-xtables-lock";

/// Every volume the injection adds.
pub const VOLUME_NAMES: [&str; 3] = [TOKEN_VOLUME, IDENTITY_VOLUME, XTABLES_VOLUME];
