//! Prometheus text exposition, parsed into series, so the tests can compare counters with what
//! they expect. Format: <https://prometheus.io/docs/instrumenting/exposition_formats/>.

use std::collections::BTreeMap;
use std::fmt;

/// One time series: a metric name and its labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    /// Metric name.
    pub name: String,
    /// Label pairs, sorted by name.
    pub labels: BTreeMap<String, String>,
}

impl Series {
    /// A series from a name and label pairs.
    pub fn new(name: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// The value of a label ("" when absent).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            write!(f, "{{{}}}", labels.join(","))?;
        }
        Ok(())
    }
}

/// A set of samples: series to value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples(pub BTreeMap<Series, f64>);

impl Samples {
    /// Parses the text format (comments and blank lines skipped). Label values with escaped
    /// quotes are not needed here and not supported.
    pub fn parse(text: &str) -> Self {
        let mut out = BTreeMap::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match key.split_once('{') {
                None => (key, BTreeMap::new()),
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
            };
            out.insert(
                Series {
                    name: name.to_owned(),
                    labels,
                },
                value,
            );
        }
        Self(out)
    }

    /// Only the series of metric `name`.
    pub fn family(&self, name: &str) -> Samples {
        Samples(
            self.0
                .iter()
                .filter(|(s, _)| s.name == name)
                .map(|(s, v)| (s.clone(), *v))
                .collect(),
        )
    }

    /// Only the series for which `keep` is true.
    pub fn filter(&self, keep: impl Fn(&Series) -> bool) -> Samples {
        Samples(
            self.0
                .iter()
                .filter(|(s, _)| keep(s))
                .map(|(s, v)| (s.clone(), *v))
                .collect(),
        )
    }

    /// `self - base` per series, leaving out series that did not change.
    pub fn since(&self, base: &Samples) -> Samples {
        Samples(
            self.0
                .iter()
                .filter_map(|(s, v)| {
                    let d = v - base.0.get(s).copied().unwrap_or(0.0);
                    (d != 0.0).then(|| (s.clone(), d))
                })
                .collect(),
        )
    }

    /// The sum of all values.
    pub fn sum(&self) -> f64 {
        self.0.values().sum()
    }

    /// The value of one series (0 when absent).
    pub fn get(&self, series: &Series) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

impl fmt::Display for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (series, value) in &self.0 {
            writeln!(f, "{series} {value}")?;
        }
        Ok(())
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((name, after)) = rest.split_once("=\"") {
        let Some((value, after)) = after.split_once('"') else {
            break;
        };
        labels.insert(
            name.trim_start_matches(',').trim().to_owned(),
            value.to_owned(),
        );
        rest = after;
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_series_and_differences() {
        let base = Samples::parse("# HELP x\nx_total{a=\"1\",b=\"two\"} 3\ny 1\n");
        let now = Samples::parse("x_total{a=\"1\",b=\"two\"} 5\ny 1\nz{c=\"\"} 2\n");
        let d = now.since(&base);
        assert_eq!(d.0.len(), 2);
        assert_eq!(
            d.get(&Series::new("x_total", &[("a", "1"), ("b", "two")])),
            2.0
        );
        assert_eq!(d.get(&Series::new("z", &[("c", "")])), 2.0);
        assert_eq!(d.to_string(), "x_total{a=\"1\",b=\"two\"} 2\nz{c=\"\"} 2\n");
    }
}
