//! What the resolver remembers: image facts by manifest digest (content-addressed, kept until
//! evicted), tag -> digest for a short TTL, and failures for a short TTL (a registry that is down
//! is not asked again by every review). Each map is least-recently-used first out and bounded in
//! entries; the facts are bounded in bytes too.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::facts::weight;
use super::fetch::FetchError;
use crate::harden::ImageFacts;

/// The cache's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most entries in each map (facts, tags, failures).
    pub entries: usize,
    /// Most bytes of facts (strings and their containers, estimated).
    pub bytes: usize,
    /// How long a tag -> digest answer is used before the registry is asked again.
    pub tag_ttl: Duration,
    /// How long a failure is remembered before the registry is asked again.
    pub error_ttl: Duration,
}

/// What the cache says about one image.
#[derive(Debug, Clone, PartialEq)]
pub enum Cached {
    /// The facts.
    Facts(Arc<ImageFacts>),
    /// A recent failure.
    Failed(FetchError),
    /// Known by digest once, but the tag's answer is stale: ask the registry which digest.
    StaleTag(String),
    /// Nothing known.
    Unknown,
}

struct Maps {
    facts: LruCache<String, (Arc<ImageFacts>, usize)>,
    bytes: usize,
    tags: LruCache<String, (String, Instant)>,
    errors: LruCache<String, (FetchError, Instant)>,
}

impl Maps {
    /// [`Cache::get`], under the lock; the warm path allocates nothing.
    fn get(&mut self, image: &str, digest: Option<&str>, now: Instant) -> Cached {
        if let Some((error, until)) = self.errors.get(image) {
            if *until > now {
                return Cached::Failed(error.clone());
            }
            self.errors.pop(image);
        }
        let (digest, fresh) = match digest {
            Some(d) => (d, true),
            None => match self.tags.get(image) {
                Some((d, until)) => (d.as_str(), *until > now),
                None => return Cached::Unknown,
            },
        };
        match self.facts.get(digest) {
            Some((facts, _)) if fresh => Cached::Facts(Arc::clone(facts)),
            Some(_) => Cached::StaleTag(digest.to_owned()),
            None => Cached::Unknown,
        }
    }
}

/// The cache, locked: several lookups for the price of one lock (see [`Cache::reader`]).
pub struct Reader<'a>(MutexGuard<'a, Maps>);

impl Reader<'_> {
    /// [`Cache::get`].
    pub fn get(&mut self, image: &str, digest: Option<&str>, now: Instant) -> Cached {
        self.0.get(image, digest, now)
    }
}

/// The resolver's memory.
pub struct Cache {
    limits: Limits,
    maps: Mutex<Maps>,
}

impl Cache {
    /// An empty cache (at least one entry per map).
    pub fn new(limits: Limits) -> Self {
        let cap = NonZeroUsize::new(limits.entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            limits,
            maps: Mutex::new(Maps {
                facts: LruCache::new(cap),
                bytes: 0,
                tags: LruCache::new(cap),
                errors: LruCache::new(cap),
            }),
        }
    }

    fn maps(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is known about `image` (as written) whose reference names `digest`, if any.
    pub fn get(&self, image: &str, digest: Option<&str>, now: Instant) -> Cached {
        self.maps().get(image, digest, now)
    }

    /// The cache held for a run of [`Reader::get`]: one lock for all of a review's images.
    pub fn reader(&self) -> Reader<'_> {
        Reader(self.maps())
    }

    /// Facts of the manifest `digest`, which `image` (a tag, or the digest itself) resolved to.
    pub fn put(&self, image: &str, digest: &str, facts: Arc<ImageFacts>, now: Instant) {
        let mut maps = self.maps();
        maps.errors.pop(image);
        if !image.ends_with(digest) {
            maps.tags.put(
                image.to_owned(),
                (digest.to_owned(), now + self.limits.tag_ttl),
            );
        }
        let size = weight(&facts) + digest.len();
        if size > self.limits.bytes {
            return;
        }
        // `push` hands back the entry it replaced or evicted (full): its bytes are given back.
        if let Some((_, (_, old))) = maps.facts.push(digest.to_owned(), (facts, size)) {
            maps.bytes -= old;
        }
        maps.bytes += size;
        while maps.bytes > self.limits.bytes {
            match maps.facts.pop_lru() {
                Some((_, (_, evicted))) => maps.bytes -= evicted,
                None => break,
            }
        }
    }

    /// Remembers that `image` could not be read.
    pub fn put_error(&self, image: &str, error: FetchError, now: Instant) {
        let until = now + self.limits.error_ttl;
        self.maps().errors.put(image.to_owned(), (error, until));
    }

    /// Facts entries and their bytes, for the gauges.
    pub fn size(&self) -> (usize, usize) {
        let maps = self.maps();
        (maps.facts.len(), maps.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::fetch::Reason;

    fn limits(entries: usize, bytes: usize) -> Limits {
        Limits {
            entries,
            bytes,
            tag_ttl: Duration::from_secs(60),
            error_ttl: Duration::from_secs(30),
        }
    }

    fn facts(user: &str) -> Arc<ImageFacts> {
        Arc::new(ImageFacts {
            user: Some(user.into()),
            ..Default::default()
        })
    }

    #[test]
    fn tags_expire_digests_do_not() {
        let cache = Cache::new(limits(10, 1 << 20));
        let t0 = Instant::now();
        cache.put("app:1", "sha256:a", facts("1001"), t0);
        assert!(
            matches!(cache.get("app:1", None, t0), Cached::Facts(f) if f.user.as_deref() == Some("1001"))
        );
        assert!(matches!(
            cache.get("other@sha256:a", Some("sha256:a"), t0),
            Cached::Facts(_)
        ));
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            cache.get("app:1", None, later),
            Cached::StaleTag("sha256:a".into())
        );
        assert!(matches!(
            cache.get("x@sha256:a", Some("sha256:a"), later),
            Cached::Facts(_)
        ));
        assert_eq!(cache.get("app:2", None, t0), Cached::Unknown);
    }

    #[test]
    fn one_reader_answers_as_get_does() {
        let cache = Cache::new(limits(10, 1 << 20));
        let t0 = Instant::now();
        cache.put("app:1", "sha256:a", facts("1001"), t0);
        let error = FetchError::new(Reason::Unreachable, "refused");
        cache.put_error("down:1", error.clone(), t0);
        let later = t0 + Duration::from_secs(61);
        let mut reader = cache.reader();
        let answers = [
            reader.get("app:1", None, t0),
            reader.get("x@sha256:a", Some("sha256:a"), t0),
            reader.get("down:1", None, t0),
            reader.get("app:1", None, later),
            reader.get("app:2", None, t0),
        ];
        drop(reader);
        assert!(matches!(&answers[0], Cached::Facts(f) if f.user.as_deref() == Some("1001")));
        assert!(matches!(&answers[1], Cached::Facts(_)));
        assert_eq!(answers[2], Cached::Failed(error));
        assert_eq!(answers[3], Cached::StaleTag("sha256:a".into()));
        assert_eq!(answers[4], Cached::Unknown);
        // The reader shares the facts the cache holds: no copy per review.
        let (Cached::Facts(a), Cached::Facts(b)) = (&answers[0], &answers[1]) else {
            unreachable!()
        };
        assert!(Arc::ptr_eq(a, b));
    }

    #[test]
    fn failures_are_remembered_for_their_ttl() {
        let cache = Cache::new(limits(10, 1 << 20));
        let t0 = Instant::now();
        let error = FetchError::new(Reason::Unreachable, "refused");
        cache.put_error("app:1", error.clone(), t0);
        assert_eq!(cache.get("app:1", None, t0), Cached::Failed(error));
        assert_eq!(
            cache.get("app:1", None, t0 + Duration::from_secs(31)),
            Cached::Unknown
        );
    }

    #[test]
    fn bounded_in_entries_and_bytes() {
        let cache = Cache::new(limits(3, 1 << 20));
        let t0 = Instant::now();
        for i in 0..10 {
            cache.put(
                &format!("app@sha256:{i}"),
                &format!("sha256:{i}"),
                facts("1"),
                t0,
            );
        }
        assert_eq!(cache.size().0, 3);
        assert!(matches!(
            cache.get("a", Some("sha256:9"), t0),
            Cached::Facts(_)
        ));
        assert_eq!(cache.get("a", Some("sha256:0"), t0), Cached::Unknown);

        let one = weight(&facts("1")) + "sha256:0".len();
        let cache = Cache::new(limits(100, one * 2));
        for i in 0..10 {
            cache.put(
                &format!("app@sha256:{i}"),
                &format!("sha256:{i}"),
                facts("1"),
                t0,
            );
        }
        let (entries, bytes) = cache.size();
        assert_eq!(entries, 2);
        assert!(bytes <= one * 2);
        let huge = Arc::new(ImageFacts {
            env: vec!["x".repeat(one * 4)],
            ..Default::default()
        });
        cache.put("big@sha256:b", "sha256:b", huge, t0);
        assert_eq!(
            cache.get("big@sha256:b", Some("sha256:b"), t0),
            Cached::Unknown
        );
        assert_eq!(
            cache.size().0,
            2,
            "an entry larger than the whole cache is not kept"
        );
    }
}
