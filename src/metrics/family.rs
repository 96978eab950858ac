//! Metric families whose label sets are types: each family names its label set once
//! ([`label_set!`]), and a series is chosen with a struct of that set's values, so a label can be
//! neither forgotten, nor misplaced, nor given to the wrong family. Registration (which cannot
//! fail for the fixed, distinct names of [`super::Metrics`]) is in one place.
#![allow(
    clippy::expect_used,
    reason = "registering fixed, distinct metric names at start cannot fail"
)]

use std::marker::PhantomData;

use prometheus::Registry;
use prometheus::core::{Collector, MetricVec, MetricVecBuilder};

/// The label names of a family and the values of one of its series.
pub(super) trait LabelSet<const N: usize> {
    /// The label names, in the order of [`LabelSet::values`].
    const NAMES: [&'static str; N];
    /// One series' values.
    type Values<'a>;
    /// The values in the order of [`LabelSet::NAMES`].
    fn values<'a>(values: &Self::Values<'a>) -> [&'a str; N];
}

/// Declares a label set: a marker type, the struct of its values (one `&str` per label, named
/// as the label) and their [`LabelSet`] implementation.
macro_rules! label_set {
    ($(#[$doc:meta])* $set:ident($values:ident; $n:literal) { $($label:ident),+ $(,)? }) => {
        $(#[$doc])*
        pub(super) enum $set {}

        #[doc = concat!("The values of one series labelled by [`", stringify!($set), "`].")]
        pub(super) struct $values<'a> {
            $(
                #[doc = concat!("`", stringify!($label), "`")]
                pub(super) $label: &'a str,
            )+
        }

        impl $crate::metrics::family::LabelSet<$n> for $set {
            const NAMES: [&'static str; $n] = [$(stringify!($label)),+];
            type Values<'a> = $values<'a>;
            fn values<'a>(values: &Self::Values<'a>) -> [&'a str; $n] {
                [$(values.$label),+]
            }
        }
    };
}
pub(super) use label_set;

/// A registered metric family labelled by `L`: counters, a histogram or gauges (`B`, the builder
/// of prometheus' `IntCounterVec`, `HistogramVec`, `IntGaugeVec`).
pub(super) struct Family<L, B: MetricVecBuilder, const N: usize> {
    vec: MetricVec<B>,
    labels: PhantomData<fn() -> L>,
}

impl<L, B: MetricVecBuilder, const N: usize> Clone for Family<L, B, N> {
    fn clone(&self) -> Self {
        Self {
            vec: self.vec.clone(),
            labels: PhantomData,
        }
    }
}

impl<L: LabelSet<N>, B: MetricVecBuilder + 'static, const N: usize> Family<L, B, N> {
    /// Builds the family with `L`'s label names (`build`: the prometheus constructor with the
    /// metric's options) and registers it in `registry`.
    pub(super) fn register(
        registry: &Registry,
        build: impl FnOnce(&[&str]) -> prometheus::Result<MetricVec<B>>,
    ) -> Self {
        let vec = build(&L::NAMES).expect("a valid metric");
        registry
            .register(Box::new(vec.clone()))
            .expect("a unique metric name");
        Self {
            vec,
            labels: PhantomData,
        }
    }

    /// The series with `values`.
    pub(super) fn with(&self, values: &L::Values<'_>) -> B::M {
        self.vec.with_label_values(&L::values(values))
    }
}

/// Names the builder of a prometheus `MetricVec` (prometheus does not export the builders).
pub(super) trait Vec {
    /// The builder.
    type Builder: MetricVecBuilder;
}

impl<B: MetricVecBuilder> Vec for MetricVec<B> {
    type Builder = B;
}

/// Registers a collector without labels (a gauge, the process collector).
pub(super) fn register<C: Collector + Clone + 'static>(
    registry: &Registry,
    collector: prometheus::Result<C>,
) -> C {
    let collector = collector.expect("a valid metric");
    registry
        .register(Box::new(collector.clone()))
        .expect("a unique metric name");
    collector
}

/// Registers the process collector (CPU, memory, open files of this process).
#[cfg(target_os = "linux")]
pub(super) fn register_process(registry: &Registry) {
    let collector = prometheus::process_collector::ProcessCollector::for_self();
    registry
        .register(Box::new(collector))
        .expect("a unique metric name");
}
