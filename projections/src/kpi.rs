//! KPIs (考核指标) per unit and period, from the assignment and call-back facts of the read
//! database, with a ranking by a weighted score.

use std::collections::BTreeMap;

use crate::calendars::Calendars;
use chrono::{DateTime, Duration, Utc};
use domain::org::{OrgTree, PeerGroup, UnitId};

use crate::ProjectionError;
use crate::projector::micros;
use crate::query::Queries;

/// Weights of the ranking score; each rate is in [0, 1] and the score is their weighted mean
/// over the rates a unit has data for.
///
/// The average handling time (平均办理时长) is not in the score: its hours depend mostly on
/// what a unit is given (an inquiry has one working day, a proposal ten), so a weight on raw
/// hours would rank units by their mix of categories, not by their work; the on-time
/// completion rate already judges speed against each case's own limit. It breaks ties
/// instead: of two units with the same score, the faster one ranks first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KpiWeights {
    /// 按时签收率 (default 0.2).
    pub on_time_receive: f64,
    /// 按时办结率 (default 0.3).
    pub on_time_completion: f64,
    /// 满意率 (default 0.3).
    pub satisfaction: f64,
    /// 解决率 (default 0.2).
    pub resolution: f64,
}

impl Default for KpiWeights {
    fn default() -> Self {
        KpiWeights {
            on_time_receive: 0.2,
            on_time_completion: 0.3,
            satisfaction: 0.3,
            resolution: 0.2,
        }
    }
}

/// Why a weights setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KpiWeightsError {
    /// A part of the list is not `name=number`.
    #[error("`{part}` is not `name=number`")]
    Malformed {
        /// The part as given.
        part: String,
    },
    /// A name that is not one of [`KpiWeights::NAMES`].
    #[error(
        "unknown KPI weight `{name}` (known: on_time_receive, on_time_completion, satisfaction, resolution)"
    )]
    UnknownName {
        /// The name as given.
        name: String,
    },
    /// The same name twice.
    #[error("KPI weight `{name}` is given twice")]
    Duplicate {
        /// The repeated name.
        name: String,
    },
    /// A value that is not a finite number of at least 0.
    #[error("KPI weight `{name}` must be a finite number of at least 0, got `{value}`")]
    BadValue {
        /// The weight.
        name: String,
        /// The value as given.
        value: String,
    },
    /// Every weight is 0, so no unit could get a score.
    #[error("every KPI weight is 0; at least one must be above 0")]
    AllZero,
}

impl KpiWeights {
    /// The names of the weights, as the setting writes them.
    pub const NAMES: [&str; 4] = [
        "on_time_receive",
        "on_time_completion",
        "satisfaction",
        "resolution",
    ];

    /// Parses `name=number,...` (spaces around parts allowed), e.g.
    /// `on_time_receive=1,on_time_completion=2,satisfaction=2,resolution=1`. A weight not
    /// named is 0; only the ratios matter, as the score is a weighted mean.
    ///
    /// # Errors
    /// [`KpiWeightsError::Malformed`], [`KpiWeightsError::UnknownName`],
    /// [`KpiWeightsError::Duplicate`], [`KpiWeightsError::BadValue`],
    /// [`KpiWeightsError::AllZero`].
    pub fn parse(text: &str) -> Result<Self, KpiWeightsError> {
        let mut values: [Option<f64>; 4] = [None; 4];
        for part in text.split(',').map(str::trim) {
            let (name, value) = part
                .split_once('=')
                .map(|(name, value)| (name.trim(), value.trim()))
                .ok_or_else(|| KpiWeightsError::Malformed {
                    part: part.to_owned(),
                })?;
            let index = Self::NAMES
                .iter()
                .position(|known| *known == name)
                .ok_or_else(|| KpiWeightsError::UnknownName {
                    name: name.to_owned(),
                })?;
            let weight = value
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| KpiWeightsError::BadValue {
                    name: name.to_owned(),
                    value: value.to_owned(),
                })?;
            if values[index].replace(weight).is_some() {
                return Err(KpiWeightsError::Duplicate {
                    name: name.to_owned(),
                });
            }
        }
        let [
            on_time_receive,
            on_time_completion,
            satisfaction,
            resolution,
        ] = values.map(|v| v.unwrap_or(0.0));
        let weights = KpiWeights {
            on_time_receive,
            on_time_completion,
            satisfaction,
            resolution,
        };
        weights.validate()?;
        Ok(weights)
    }

    /// Checks weights built in code: each a finite number of at least 0, not all 0.
    ///
    /// # Errors
    /// [`KpiWeightsError::BadValue`], [`KpiWeightsError::AllZero`].
    pub fn validate(&self) -> Result<(), KpiWeightsError> {
        for (name, weight) in Self::NAMES.iter().zip(self.values()) {
            if !(weight.is_finite() && weight >= 0.0) {
                return Err(KpiWeightsError::BadValue {
                    name: (*name).to_owned(),
                    value: weight.to_string(),
                });
            }
        }
        if self.values().iter().all(|w| *w == 0.0) {
            return Err(KpiWeightsError::AllZero);
        }
        Ok(())
    }

    fn values(&self) -> [f64; 4] {
        [
            self.on_time_receive,
            self.on_time_completion,
            self.satisfaction,
            self.resolution,
        ]
    }
}

impl std::fmt::Display for KpiWeights {
    /// The setting's own syntax, which [`KpiWeights::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, weight)) in Self::NAMES.iter().zip(self.values()).enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}={weight}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for KpiWeights {
    type Err = KpiWeightsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KpiWeights::parse(text)
    }
}

/// One unit's figures for a period.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UnitKpi {
    /// The unit.
    pub unit_id: String,
    /// 接收量: assignments given to the unit in the period (recalled and cancelled ones not
    /// counted).
    pub received: u64,
    /// Of those, how many the unit has signed for.
    pub signed: u64,
    /// Of those, how many it signed for by the receive-by.
    pub signed_on_time: u64,
    /// 办结量: assignments the unit completed in the period.
    pub completed: u64,
    /// Of those, how many by the complete-by.
    pub completed_on_time: u64,
    /// Working time from being given each of those assignments (转办) to completing it,
    /// summed; see [`UnitKpi::avg_handling_hours`].
    pub handling_time: Duration,
    /// Some of that working time runs through a year whose holiday notice is missing.
    pub handling_provisional: bool,
    /// Cases it led to completion that were called back in the period (ratings excluded by an
    /// upheld appeal not counted).
    pub called_back: u64,
    /// Of those, satisfied or basically satisfied.
    pub satisfied: u64,
    /// Of those, resolved.
    pub resolved: u64,
    /// Of those, reopened at least once.
    pub reopened: u64,
    /// The weighted score, `None` without any rate.
    pub score: Option<f64>,
    /// The units it is ranked against ([`OrgTree::peer_group`]); `None` for units that are
    /// never ranked (centres).
    pub peer_group: Option<PeerGroup>,
    /// 1-based place among its peer group's ranked units; `None` when not ranked (fewer than
    /// [`MIN_RATED_TO_RANK`] rated cases, no score, or no peer group).
    pub rank: Option<u32>,
    /// How many units of its peer group are ranked.
    pub ranked_among: u32,
}

/// Rated cases (call-backs) a unit needs in the period to be ranked: a rate over one or two
/// ratings says little, and a unit must not top a ranking on a single satisfied call.
pub const MIN_RATED_TO_RANK: u64 = 5;

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl UnitKpi {
    /// 按时签收率.
    pub fn on_time_receive_rate(&self) -> Option<f64> {
        rate(self.signed_on_time, self.signed)
    }
    /// 按时办结率.
    pub fn on_time_completion_rate(&self) -> Option<f64> {
        rate(self.completed_on_time, self.completed)
    }
    /// 满意率.
    pub fn satisfaction_rate(&self) -> Option<f64> {
        rate(self.satisfied, self.called_back)
    }
    /// 解决率.
    pub fn resolution_rate(&self) -> Option<f64> {
        rate(self.resolved, self.called_back)
    }
    /// 重办率.
    pub fn reopen_rate(&self) -> Option<f64> {
        rate(self.reopened, self.called_back)
    }
    /// 平均办理时长: the mean working hours from being given a case to completing it, over
    /// the assignments completed in the period; `None` without any.
    pub fn avg_handling_hours(&self) -> Option<f64> {
        (self.completed > 0).then(|| {
            self.handling_time.num_milliseconds() as f64 / 3_600_000.0 / self.completed as f64
        })
    }

    fn compute_score(&self, w: &KpiWeights) -> Option<f64> {
        let parts = [
            (self.on_time_receive_rate(), w.on_time_receive),
            (self.on_time_completion_rate(), w.on_time_completion),
            (self.satisfaction_rate(), w.satisfaction),
            (self.resolution_rate(), w.resolution),
        ];
        let (sum, weight) = parts
            .iter()
            .filter_map(|(r, w)| r.map(|r| (r * w, *w)))
            .fold((0.0, 0.0), |(s, t), (x, w)| (s + x, t + w));
        (weight > 0.0).then(|| sum / weight)
    }
}

impl Queries {
    /// The KPIs of every unit with activity in `[from, to)`, as [`Queries::kpis_by_scan`]
    /// computes them: for a period of whole Shanghai days (every period of the KPI table),
    /// summed over the days of `kpi_day` (a month is about thirty rows per active unit),
    /// otherwise by the scan.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn kpis(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        weights: &KpiWeights,
        calendar: &dyn Calendars,
        org: &OrgTree,
    ) -> Result<Vec<UnitKpi>, ProjectionError> {
        let (from_us, to_us) = (micros(from), micros(to));
        if !(crate::kpi_day::is_day_start(from_us) && crate::kpi_day::is_day_start(to_us)) {
            return self.kpis_by_scan(from, to, weights, calendar, org);
        }
        let n = |v: i64| v.max(0) as u64;
        let units = crate::kpi_day::sum(self.connection(), from_us, to_us)?
            .into_iter()
            .map(|(unit, d)| {
                let kpi = UnitKpi {
                    unit_id: unit.clone(),
                    received: n(d.received),
                    signed: n(d.signed),
                    signed_on_time: n(d.signed_on_time),
                    completed: n(d.completed),
                    completed_on_time: n(d.completed_on_time),
                    handling_time: Duration::microseconds(d.handling_us),
                    handling_provisional: d.provisional > 0,
                    called_back: n(d.called_back),
                    satisfied: n(d.satisfied),
                    resolved: n(d.resolved),
                    reopened: n(d.reopened),
                    ..UnitKpi::default()
                };
                (unit, kpi)
            })
            .collect();
        Ok(scored(units, weights, org))
    }

    /// The KPIs of every unit with activity in `[from, to)`, ranked like with like: within
    /// each peer group ([`OrgTree::peer_group`]) by the weighted score (highest first; ties by
    /// the shorter average handling time, then by unit id), only units with at least
    /// [`MIN_RATED_TO_RANK`] rated cases. Listed by peer group, the ranked units first in
    /// rank order, then the unranked ones. Handling times are measured on `calendar`.
    ///
    /// # Errors
    /// [`ProjectionError::Sqlite`].
    pub fn kpis_by_scan(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        weights: &KpiWeights,
        calendar: &dyn Calendars,
        org: &OrgTree,
    ) -> Result<Vec<UnitKpi>, ProjectionError> {
        let (from, to) = (micros(from), micros(to));
        let conn = self.connection();
        let mut given = conn.prepare_cached(
            "SELECT unit_id, count(*), sum(received_at IS NOT NULL),
                    sum(received_at IS NOT NULL AND received_at <= receive_by)
             FROM case_assignment
             WHERE transferred_at >= ?1 AND transferred_at < ?2
               AND state NOT IN ('recalled', 'cancelled')
             GROUP BY unit_id",
        )?;
        let rows = given.query_map([from, to], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut facts: Vec<(String, [i64; 3], usize)> = Vec::new();
        for row in rows {
            let (unit, a, b, c) = row?;
            facts.push((unit, [a, b, c], 0));
        }
        let mut done = conn.prepare_cached(
            "SELECT unit_id, count(*), sum(completed_at <= complete_by)
             FROM case_assignment
             WHERE completed_at >= ?1 AND completed_at < ?2 AND state = 'completed'
             GROUP BY unit_id",
        )?;
        for row in done.query_map([from, to], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (unit, a, b) = row?;
            facts.push((unit, [a, b, 0], 1));
        }
        // Handling times need the calendar, so the completed assignments are measured here.
        let mut handled = conn.prepare_cached(
            "SELECT unit_id, transferred_at, completed_at
             FROM case_assignment
             WHERE completed_at >= ?1 AND completed_at < ?2 AND state = 'completed'",
        )?;
        let mut handling: BTreeMap<String, (Duration, bool)> = BTreeMap::new();
        for row in handled.query_map([from, to], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })? {
            let (unit, given, completed) = row?;
            let (Some(given), Some(completed)) = (
                DateTime::from_timestamp_micros(given),
                DateTime::from_timestamp_micros(completed),
            ) else {
                continue;
            };
            let span = calendar.handling_time(given, completed);
            let entry = handling.entry(unit).or_insert((Duration::zero(), false));
            entry.0 += span.duration;
            entry.1 |= span.provisional;
        }
        // Every call-back counts for the unit it rated, reopened or not; only an upheld
        // appeal takes one out (rule 13).
        let mut rated = conn.prepare_cached(
            "SELECT unit_id, count(*),
                    sum(satisfaction IN ('satisfied', 'basically_satisfied')),
                    sum(resolved)
             FROM case_callback
             WHERE called_back_at >= ?1 AND called_back_at < ?2
               AND unit_id IS NOT NULL AND excluded = 0
             GROUP BY unit_id",
        )?;
        for row in rated.query_map([from, to], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })? {
            let (unit, a, b, c) = row?;
            facts.push((unit, [a, b, c], 2));
        }
        let mut reopened = conn.prepare_cached(
            "SELECT unit_id, count(*) FROM case_callback
             WHERE called_back_at >= ?1 AND called_back_at < ?2
               AND unit_id IS NOT NULL AND excluded = 0 AND reopened = 1
             GROUP BY unit_id",
        )?;
        for row in reopened.query_map([from, to], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (unit, a) = row?;
            facts.push((unit, [a, 0, 0], 3));
        }
        let n = |v: i64| v.max(0) as u64;
        let mut units: BTreeMap<String, UnitKpi> = BTreeMap::new();
        for (unit, [a, b, c], kind) in facts {
            let k = units.entry(unit.clone()).or_insert_with(|| UnitKpi {
                unit_id: unit,
                ..UnitKpi::default()
            });
            match kind {
                0 => {
                    k.received = n(a);
                    k.signed = n(b);
                    k.signed_on_time = n(c);
                }
                1 => {
                    k.completed = n(a);
                    k.completed_on_time = n(b);
                }
                2 => {
                    k.called_back = n(a);
                    k.satisfied = n(b);
                    k.resolved = n(c);
                }
                _ => k.reopened = n(a),
            }
        }
        for (unit, (time, provisional)) in handling {
            if let Some(k) = units.get_mut(&unit) {
                k.handling_time = time;
                k.handling_provisional = provisional;
            }
        }
        Ok(scored(units, weights, org))
    }
}

/// `units` scored, grouped with their peers and ranked.
fn scored(units: BTreeMap<String, UnitKpi>, weights: &KpiWeights, org: &OrgTree) -> Vec<UnitKpi> {
    let mut out: Vec<UnitKpi> = units
        .into_values()
        .map(|mut k| {
            k.score = k.compute_score(weights);
            k.peer_group = org.peer_group(&UnitId::new(k.unit_id.clone()));
            k
        })
        .collect();
    rank(&mut out);
    out
}

/// Ranks `units` within their peer groups and orders them for display (see
/// [`Queries::kpis`]).
fn rank(units: &mut [UnitKpi]) {
    let rankable = |k: &UnitKpi| {
        k.peer_group.is_some() && k.score.is_some() && k.called_back >= MIN_RATED_TO_RANK
    };
    units.sort_by(|a, b| {
        let group = |k: &UnitKpi| k.peer_group.as_ref().map(|g| g.key.clone());
        // Units without a group (centres) after every group.
        (group(a).is_none(), group(a))
            .cmp(&(group(b).is_none(), group(b)))
            .then_with(|| rankable(b).cmp(&rankable(a)))
            .then_with(|| b.score.unwrap_or(-1.0).total_cmp(&a.score.unwrap_or(-1.0)))
            .then_with(|| {
                let hours = |k: &UnitKpi| k.avg_handling_hours().unwrap_or(f64::INFINITY);
                hours(a).total_cmp(&hours(b))
            })
            .then_with(|| a.unit_id.cmp(&b.unit_id))
    });
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for k in units.iter_mut() {
        k.rank = None;
        if rankable(k)
            && let Some(group) = &k.peer_group
        {
            let n = counts.entry(group.key.clone()).or_default();
            *n += 1;
            k.rank = Some(*n);
        }
    }
    for k in units.iter_mut() {
        k.ranked_among = k
            .peer_group
            .as_ref()
            .and_then(|g| counts.get(&g.key))
            .copied()
            .unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, group: Option<&str>, score: f64, rated: u64) -> UnitKpi {
        UnitKpi {
            unit_id: id.into(),
            called_back: rated,
            score: Some(score),
            peer_group: group.map(|g| PeerGroup {
                key: g.into(),
                label: g.into(),
            }),
            ..UnitKpi::default()
        }
    }

    #[test]
    fn units_are_ranked_within_their_peer_group_and_only_with_enough_ratings() {
        let mut units = vec![
            unit("street.a", Some("district:a"), 0.7, 9),
            unit("bureau.x", Some("bureaus"), 0.6, 5),
            unit("street.b", Some("district:a"), 0.9, 6),
            unit("bureau.y", Some("bureaus"), 0.95, 20),
            // One perfect call is no ranking.
            unit("street.c", Some("district:a"), 1.0, 1),
            unit("centre", None, 1.0, 50),
        ];
        rank(&mut units);
        let view: Vec<(&str, Option<u32>, u32)> = units
            .iter()
            .map(|k| (k.unit_id.as_str(), k.rank, k.ranked_among))
            .collect();
        assert_eq!(
            view,
            [
                ("bureau.y", Some(1), 2),
                ("bureau.x", Some(2), 2),
                ("street.b", Some(1), 2),
                ("street.a", Some(2), 2),
                ("street.c", None, 2),
                ("centre", None, 0),
            ]
        );
    }

    #[test]
    fn weights_parse_by_name_and_unnamed_ones_are_zero() {
        let weights =
            KpiWeights::parse("on_time_receive=1, on_time_completion=2,satisfaction = 2.5")
                .expect("valid");
        assert_eq!(
            weights,
            KpiWeights {
                on_time_receive: 1.0,
                on_time_completion: 2.0,
                satisfaction: 2.5,
                resolution: 0.0,
            }
        );
    }

    #[test]
    fn the_default_weights_read_back_from_their_display() {
        let text = KpiWeights::default().to_string();
        assert_eq!(
            text,
            "on_time_receive=0.2,on_time_completion=0.3,satisfaction=0.3,resolution=0.2"
        );
        assert_eq!(KpiWeights::parse(&text), Ok(KpiWeights::default()));
    }

    #[test]
    fn bad_weights_are_refused_with_the_reason() {
        let refused = |text: &str| KpiWeights::parse(text).expect_err(text);
        assert_eq!(
            refused("speed=1"),
            KpiWeightsError::UnknownName {
                name: "speed".into()
            }
        );
        assert_eq!(
            refused("satisfaction"),
            KpiWeightsError::Malformed {
                part: "satisfaction".into()
            }
        );
        assert_eq!(
            refused("satisfaction=1,"),
            KpiWeightsError::Malformed { part: "".into() }
        );
        assert_eq!(
            refused("satisfaction=1,satisfaction=2"),
            KpiWeightsError::Duplicate {
                name: "satisfaction".into()
            }
        );
        for value in ["-1", "NaN", "inf", "abc", ""] {
            assert_eq!(
                refused(&format!("resolution={value}")),
                KpiWeightsError::BadValue {
                    name: "resolution".into(),
                    value: value.into()
                }
            );
        }
        assert_eq!(
            refused("resolution=0,satisfaction=0"),
            KpiWeightsError::AllZero
        );
        assert_eq!(refused(""), KpiWeightsError::Malformed { part: "".into() });
    }

    #[test]
    fn weights_built_in_code_are_validated_too() {
        let negative = KpiWeights {
            satisfaction: -0.5,
            ..KpiWeights::default()
        };
        assert!(matches!(
            negative.validate(),
            Err(KpiWeightsError::BadValue { .. })
        ));
        let zero = KpiWeights {
            on_time_receive: 0.0,
            on_time_completion: 0.0,
            satisfaction: 0.0,
            resolution: 0.0,
        };
        assert_eq!(zero.validate(), Err(KpiWeightsError::AllZero));
        assert_eq!(KpiWeights::default().validate(), Ok(()));
    }

    #[test]
    fn the_score_is_the_weighted_mean_of_the_rates_a_unit_has() {
        let unit = UnitKpi {
            signed: 4,
            signed_on_time: 2,
            completed: 2,
            completed_on_time: 2,
            ..UnitKpi::default()
        };
        // No call-backs: satisfaction and resolution have no rate and no weight.
        let weights = KpiWeights::parse("on_time_receive=1,on_time_completion=3,satisfaction=5")
            .expect("valid");
        let score = unit.compute_score(&weights).expect("a score");
        assert!((score - (0.5 + 3.0) / 4.0).abs() < 1e-12, "{score}");
    }
}
