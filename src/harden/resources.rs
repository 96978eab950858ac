//! Default CPU and memory requests and limits for a container (the `resources` change): what is
//! written is kept, a missing request or limit gets the policy's default, never a limit below an
//! existing request.
//!
//! See <https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/>.

use std::cmp::Ordering;

use crate::dom::Json;

use super::HardenError;
use super::change::{Change, ChangeName, SkipReason, decide};
use super::container::{ContainerFacts, Env};
use super::json::{self, Object};
use super::overlay::{Overlay, Step};
use super::quantity::Quantity;

/// Default requests and limits. Never a limit below an existing request; a container that sets
/// only a limit gets no request (the API server defaults the request to the limit, and a smaller
/// default would change its QoS class).
pub(crate) fn harden_resources(
    c: &Object,
    at: [Step<'_>; 2],
    overlay: &mut Overlay<'_>,
    facts: &ContainerFacts,
    env: &Env<'_>,
    changes: &mut Vec<Change>,
) -> Result<(), HardenError> {
    let name = Some(facts.name.as_str());
    let path = |field: &str| format!("spec.{}[{}].resources{field}", facts.list, facts.name);
    if facts.list == "ephemeralContainers" {
        // Ephemeral containers may not set resources.
        return Ok(());
    }
    let defaults = &env.ctx.policy.resources;
    let resources = json::object(c, "resources", || path(""))?;
    let requests = resources
        .map(|r| json::object(r, "requests", || path(".requests")))
        .transpose()?
        .flatten();
    let limits = resources
        .map(|r| json::object(r, "limits", || path(".limits")))
        .transpose()?
        .flatten();

    let mut new_requests: Vec<(&'static str, Json<'static>)> = Vec::new();
    let mut new_limits: Vec<(&'static str, Json<'static>)> = Vec::new();
    for (resource, request, limit, want_limit) in [
        (
            "cpu",
            &defaults.cpu_request,
            &defaults.cpu_limit,
            defaults.cpu_limits,
        ),
        (
            "memory",
            &defaults.memory_request,
            &defaults.memory_limit,
            true,
        ),
    ] {
        let current_request = requests
            .and_then(|r| r.get(resource))
            .filter(|v| !v.is_null());
        let current_limit = limits
            .and_then(|l| l.get(resource))
            .filter(|v| !v.is_null());
        match (current_request, current_limit) {
            (None, None) => {
                new_requests.push((resource, request.as_str().into()));
                if want_limit {
                    new_limits.push((resource, limit.as_str().into()));
                }
            }
            (Some(existing), None) if want_limit => {
                let text = quantity_text(existing).ok_or_else(|| HardenError::WrongType {
                    path: path(&format!(".requests.{resource}")),
                    expected: "a quantity",
                })?;
                // A request above the default limit becomes the limit itself.
                let above = Quantity::cmp_str(&text, limit) == Some(Ordering::Greater);
                let value = if above {
                    existing.clone().into_owned()
                } else {
                    limit.as_str().into()
                };
                new_limits.push((resource, value));
            }
            _ => {}
        }
    }

    let nothing_to_add = new_requests.is_empty() && new_limits.is_empty();
    let change = decide(
        ChangeName::Resources,
        name,
        nothing_to_add.then_some(true),
        || {
            if env.pod_resources {
                Some(SkipReason::ExplicitValue)
            } else {
                env.ctx.switched_off(ChangeName::Resources)
            }
        },
    );
    if change.is_applied() {
        for (key, new) in [("requests", new_requests), ("limits", new_limits)] {
            if !new.is_empty() {
                let [list, index] = at;
                let field = || path(&format!(".{key}"));
                overlay.insert(
                    &[list, index, Step::Key("resources"), Step::Key(key)],
                    new,
                    field,
                )?;
            }
        }
    }
    changes.push(change);
    Ok(())
}

/// A quantity as text: Kubernetes accepts strings and plain numbers.
fn quantity_text(value: &Json<'_>) -> Option<String> {
    match value {
        Json::String(s) if Quantity::parse(s).is_ok() => Some(s.to_string()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
