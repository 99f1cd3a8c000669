//! The admission webhooks: the HTTPS router ([`router`]: bounded bodies, the large-review lane,
//! the answer), the injection webhook ([`inject`], `POST /inject`), the validating webhook of
//! policy resources ([`validate`], `POST /validate`) and their metrics ([`metrics`]). The
//! decisions themselves are `weft-injector`'s and `weft-policy-k8s-api`'s.

mod inject;
pub mod metrics;
pub mod router;
mod validate;

pub use self::router::{AdmissionService, InjectorSlot, MAX_BODY_BYTES, MAX_VALIDATE_BODY_BYTES};
