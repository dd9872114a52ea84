//! The `[monitoring]` section: how many distinct label values the traffic metrics may
//! hold, and over what window `proxyctl top` rates are computed.
//!
//! Topic names and client ids come from clients, so a client that made up a new one per
//! request could grow the metrics without end and take down the node and its scraper.
//! Each label is capped; values past the cap are counted under `other`.

use std::time::Duration;

use serde::Deserialize;

use crate::{invalid, ConfigError};

/// A cap past which no Prometheus server is helped: a million series per label.
const LARGEST_CAP: usize = 1_000_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Distinct topics labelled in the per-topic metrics on this node.
    #[serde(default = "default_cap")]
    pub max_topics: usize,
    /// Distinct client ids, and distinct principals, labelled on this node; also caps the
    /// distinct client software (name, version) pairs.
    #[serde(default = "default_cap")]
    pub max_clients: usize,
    /// `/api/v1/traffic` rates are averaged over this long.
    #[serde(default = "default_rate_window", with = "humantime_serde")]
    pub rate_window: Duration,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            max_topics: default_cap(),
            max_clients: default_cap(),
            rate_window: default_rate_window(),
        }
    }
}

fn default_cap() -> usize {
    1000
}

fn default_rate_window() -> Duration {
    Duration::from_secs(10)
}

impl MonitoringConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (field, cap) in [
            ("monitoring.max_topics", self.max_topics),
            ("monitoring.max_clients", self.max_clients),
        ] {
            if cap == 0 || cap > LARGEST_CAP {
                return Err(invalid(
                    field,
                    format!("must be between 1 and {LARGEST_CAP}, not {cap}"),
                ));
            }
        }
        if self.rate_window < Duration::from_secs(2) || self.rate_window > Duration::from_secs(600)
        {
            return Err(invalid(
                "monitoring.rate_window",
                "must be between 2s and 10m",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_and_window_are_checked_with_the_field_named() {
        assert!(MonitoringConfig::default().validate().is_ok());
        let zero = MonitoringConfig {
            max_topics: 0,
            ..Default::default()
        };
        let e = zero.validate().unwrap_err().to_string();
        assert!(e.contains("monitoring.max_topics"), "{e}");
        let huge = MonitoringConfig {
            max_clients: 2_000_000,
            ..Default::default()
        };
        assert!(huge
            .validate()
            .unwrap_err()
            .to_string()
            .contains("monitoring.max_clients"));
        let short = MonitoringConfig {
            rate_window: Duration::from_millis(500),
            ..Default::default()
        };
        assert!(short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("monitoring.rate_window"));
    }
}
