//! What a review asks about the images of the pod spec it hardens: [`ImageSource`] answers
//! with the facts it has now (no I/O: the server resolves missing images between two passes,
//! see `crate::server`), and warnings for the images it could not read.

use crate::dom::Json;

use crate::harden::{ImageLookup, WorkloadKind};
use crate::psa::CONTAINER_LISTS;

/// Facts about images, for a review.
pub trait ImageSource {
    /// The facts known for `images` (each as written in a container's `image`), and one warning
    /// per image that will be hardened without its configuration.
    fn lookup(&mut self, images: &[&str]) -> (ImageLookup, Vec<String>);

    /// Whether to ask at all (false: the pod spec's images are not even listed).
    fn enabled(&self) -> bool {
        true
    }
}

/// No lookups (`--resolve-images` off): every image hardened image-blind, no warnings.
pub struct NoImages;

impl ImageSource for NoImages {
    fn lookup(&mut self, _: &[&str]) -> (ImageLookup, Vec<String>) {
        (ImageLookup::new(), Vec::new())
    }

    fn enabled(&self) -> bool {
        false
    }
}

/// At most this many image warnings per review; the rest are summarised in one line (the API
/// server passes a few short warnings on to the client, not hundreds).
const MAX_IMAGE_WARNINGS: usize = 5;

/// `warnings` with at most [`MAX_IMAGE_WARNINGS`] kept and the rest counted.
pub(super) fn capped(mut warnings: Vec<String>) -> Vec<String> {
    if warnings.len() > MAX_IMAGE_WARNINGS {
        let more = warnings.len() - MAX_IMAGE_WARNINGS;
        warnings.truncate(MAX_IMAGE_WARNINGS);
        warnings.push(format!(
            "{more} more images hardened without their configuration"
        ));
    }
    warnings
}

/// The distinct `image` values of the object's pod spec, in container order. Values that are not
/// strings (or empty) are left out: the rules report those. Borrowed from `object`: listing
/// allocates no string per image.
pub fn images_of<'a>(object: &'a Json<'_>, kind: WorkloadKind) -> Vec<&'a str> {
    let spec = kind
        .pod_spec_path()
        .iter()
        .try_fold(object, |value, key| value.get(key));
    let mut images: Vec<&str> = Vec::new();
    let Some(spec) = spec else {
        return images;
    };
    for list in CONTAINER_LISTS {
        let containers = spec.get(list).and_then(Json::as_array);
        for container in containers.into_iter().flatten() {
            if let Some(image) = container.get("image").and_then(Json::as_str)
                && !image.is_empty()
                && !images.contains(&image)
            {
                images.push(image);
            }
        }
    }
    images
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_warnings_are_capped() {
        let few: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        assert_eq!(capped(few.clone()), few);
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let kept = capped(many);
        assert_eq!(kept.len(), 6);
        assert_eq!(
            kept[5],
            "35 more images hardened without their configuration"
        );
    }

    #[test]
    fn images_of_every_container_list_once() {
        let deployment = json!({"spec": {"template": {"spec": {
            "initContainers": [{"name": "i", "image": "busybox:1"}],
            "containers": [{"name": "a", "image": "app:1"}, {"name": "b", "image": "busybox:1"},
                           {"name": "c"}, {"name": "d", "image": 7}, {"name": "e", "image": ""}],
        }}}});
        assert_eq!(
            images_of(&Json::from(&deployment), WorkloadKind::Deployment),
            ["busybox:1", "app:1"]
        );
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "a", "image": "job@sha256:00"}]}}}}}});
        assert_eq!(
            images_of(&Json::from(&cron), WorkloadKind::CronJob),
            ["job@sha256:00"]
        );
        assert!(images_of(&Json::from(&json!({"spec": 3})), WorkloadKind::Pod).is_empty());
        assert!(images_of(&Json::from(&json!([])), WorkloadKind::Pod).is_empty());
    }
}
