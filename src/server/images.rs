//! A review with `--resolve-images`, in two passes so that no hardening slot waits on a registry:
//!
//! 1. with the cache only (inline for a small body, else on the blocking pool, as without image
//!    lookups: `routes::run_review`): when every image of the pod spec is known (or
//!    known to fail), this is the answer: the warm path takes the cache's lock once and shares
//!    each image's facts (an `Arc`), no copy;
//! 2. otherwise the missing images are fetched on the async workers, within the budget and
//!    holding no slot, and the review runs again with what came back (the first pass's result
//!    is dropped: re-reading the body costs microseconds, the fetch milliseconds).

use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinError;

use super::State;
use crate::admission::{self, ImageSource, Mode, Reviewed};
use crate::harden::ImageLookup;
use crate::registry::{Resolved, Resolver};

/// Pass 1: the cache's answer, remembered.
struct FromCache {
    resolver: Resolver,
    found: Option<Resolved>,
}

impl ImageSource for FromCache {
    fn lookup(&mut self, images: &[&str]) -> (ImageLookup, Vec<String>) {
        let found = self.resolver.cached(images);
        if found.missing.is_empty() {
            // The warm path: this pass is the answer, nothing to keep.
            return (found.lookup, found.warnings);
        }
        let answer = (found.lookup.clone(), found.warnings.clone());
        self.found = Some(found);
        answer
    }
}

/// Pass 2: what pass 1 found plus what was fetched.
struct Fixed(Option<(ImageLookup, Vec<String>)>);

impl ImageSource for Fixed {
    fn lookup(&mut self, _: &[&str]) -> (ImageLookup, Vec<String>) {
        self.0.take().unwrap_or_default()
    }
}

/// Reviews `body`, resolving its images with `resolver` (see the module header).
pub(super) async fn review(
    body: Bytes,
    mode: Mode,
    state: Arc<State>,
    resolver: Resolver,
) -> Result<Reviewed, JoinError> {
    let source = FromCache {
        resolver: resolver.clone(),
        found: None,
    };
    let (reviewed, source) = run_pass(&state, body.clone(), mode, source).await?;
    let Some(mut found) = source.found.filter(|f| !f.missing.is_empty()) else {
        return Ok(reviewed);
    };
    let fetched = resolver.resolve(&std::mem::take(&mut found.missing)).await;
    found.lookup.extend(fetched.lookup);
    found.warnings.extend(fetched.warnings);
    let source = Fixed(Some((found.lookup, found.warnings)));
    let (reviewed, _) = run_pass(&state, body, mode, source).await?;
    Ok(reviewed)
}

/// Runs one pass ([`super::routes::run_review`]: inline for a small body, else on the blocking
/// pool).
async fn run_pass<S: ImageSource + Send + 'static>(
    state: &Arc<State>,
    body: Bytes,
    mode: Mode,
    mut source: S,
) -> Result<(Reviewed, S), JoinError> {
    super::routes::run_review(state, body, move |body, state| {
        let reviewed = admission::review_with_images(body, mode, &state.policy, &mut source);
        (reviewed, source)
    })
    .await
}
