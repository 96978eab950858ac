//! The one generator of pod specs, for fuzzing and property tests: [`PodSpec`] (through
//! [`arbitrary::Arbitrary`], from bytes) written as the JSON the API server would send
//! ([`ToJson`]). Every field may be missing, `null`, of its type, or any JSON at all
//! ([`Field`]); names, paths and values that matter to the rules (and that collide on purpose)
//! come up often beside arbitrary ones.
//!
//! The fuzz targets (fuzz/) build AdmissionReviews around it; the property tests
//! (tests/it/properties.rs) draw it from proptest's bytes. A new pod spec field is taught here,
//! once.

pub mod json;
pub mod pod;

pub use json::{Field, Json, Render, ToJson};
pub use pod::PodSpec;
