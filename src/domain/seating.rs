//! Seating options: a single table or a combination of tables, and the best-fit order.
use super::table::{Table, TableId};
use super::{FieldError, PartySize};
use serde::{Deserialize, Serialize};

/// Tables that may be joined for one party: 2–6 distinct tables of the restaurant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Combination {
    /// As a table id (`[A-Za-z0-9_-]{1,32}`), unique among the restaurant's combinations.
    pub id: TableId,
    /// The member tables, sorted by id.
    pub tables: Vec<TableId>,
    pub min_party: u32,
    pub max_party: u32,
}

impl Combination {
    pub fn fits(&self, p: PartySize) -> bool {
        self.min_party <= p.get() && p.get() <= self.max_party
    }
}

pub const MAX_COMBINATIONS: usize = 100;
pub const MIN_MEMBERS: usize = 2;
pub const MAX_MEMBERS: usize = 6;

/// A seating option as the store claims it: every member table, free over the whole time, or
/// nothing. `tables` is sorted; `combination` is `None` for a single table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Seating {
    pub combination: Option<TableId>,
    pub tables: Vec<TableId>,
}

impl Seating {
    pub fn single(t: &TableId) -> Self {
        Seating {
            combination: None,
            tables: vec![t.clone()],
        }
    }

    pub fn of_combination(c: &Combination) -> Self {
        let mut tables = c.tables.clone();
        tables.sort();
        Seating {
            combination: Some(c.id.clone()),
            tables,
        }
    }

    /// The first member: what v1 clients read as `table_id`.
    pub fn first(&self) -> &TableId {
        &self.tables[0]
    }
}

/// Checks the combinations against the restaurant's tables; sorts members and combinations.
pub(super) fn validate_combinations(
    tables: &[Table],
    combos: &mut [Combination],
    errs: &mut Vec<FieldError>,
) {
    if combos.len() > MAX_COMBINATIONS {
        errs.push(FieldError::new(
            "combinations",
            format!("at most {MAX_COMBINATIONS} combinations"),
        ));
    }
    for (i, c) in combos.iter_mut().enumerate() {
        let field = |m: &str| format!("combinations[{i}].{m}");
        c.tables.sort();
        if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&c.tables.len()) {
            errs.push(FieldError::new(
                field("tables"),
                format!("must name {MIN_MEMBERS} to {MAX_MEMBERS} tables"),
            ));
        }
        if c.tables.windows(2).any(|w| w[0] == w[1]) {
            errs.push(FieldError::new(
                field("tables"),
                "must name distinct tables",
            ));
        }
        for t in &c.tables {
            if !tables.iter().any(|x| &x.id == t) {
                errs.push(FieldError::new(
                    field("tables"),
                    format!("`{t}` is not a table of this restaurant"),
                ));
            }
        }
        if !(1..=PartySize::MAX).contains(&c.max_party) {
            errs.push(FieldError::new(
                field("max_party"),
                "must be between 1 and 100",
            ));
        }
        if c.min_party < 1 || c.min_party > c.max_party {
            errs.push(FieldError::new(
                field("min_party"),
                "must be between 1 and max_party",
            ));
        }
    }
    combos.sort_by(|a, b| a.id.cmp(&b.id));
    if combos.windows(2).any(|w| w[0].id == w[1].id) {
        errs.push(FieldError::new(
            "combinations",
            "combination ids must be unique",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::restaurant::tests::paris;

    fn tid(s: &str) -> TableId {
        TableId::parse(s).unwrap()
    }

    fn combo(id: &str, tables: &[&str], min: u32, max: u32) -> Combination {
        Combination {
            id: tid(id),
            tables: tables.iter().map(|t| tid(t)).collect(),
            min_party: min,
            max_party: max,
        }
    }

    #[test]
    fn best_fit_takes_single_tables_then_combinations_by_size_members_and_id() {
        let mut r = paris();
        r.tables.push(Table {
            id: tid("t3"),
            label: "T3".into(),
            min_party: 1,
            max_party: 4,
            area: None,
        });
        r.combinations = vec![
            combo("cz", &["t2", "t1"], 1, 6),
            combo("cb", &["t1", "t2", "t3"], 1, 6),
            combo("ca", &["t3", "t2", "t1"], 1, 6),
            combo("c9", &["t3", "t2"], 3, 8),
        ];
        r.validate().unwrap();
        let order: Vec<String> = r
            .fitting_options(PartySize::new(4).unwrap())
            .iter()
            .map(|s| {
                s.combination
                    .as_ref()
                    .map_or_else(|| s.tables[0].to_string(), |c| c.to_string())
            })
            .collect();
        assert_eq!(order, ["t2", "t3", "cz", "ca", "cb", "c9"]);
        let cz = r.fitting_options(PartySize::new(4).unwrap())[2].clone();
        assert_eq!(cz.tables, [tid("t1"), tid("t2")]);
        assert_eq!(cz.first(), &tid("t1"));
    }

    #[test]
    fn combinations_must_name_two_to_six_distinct_existing_tables_and_sane_bounds() {
        let bad = |c: Combination| {
            let mut r = paris();
            r.combinations = vec![c];
            r.validate()
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(bad(combo("c", &["t1"], 1, 2)), ["combinations[0].tables"]);
        assert_eq!(
            bad(combo("c", &["t1", "t1"], 1, 2)),
            ["combinations[0].tables"]
        );
        assert_eq!(
            bad(combo("c", &["t1", "t9"], 1, 2)),
            ["combinations[0].tables"]
        );
        assert_eq!(
            bad(combo("c", &["t1", "t2"], 3, 2)),
            ["combinations[0].min_party"]
        );
        assert_eq!(
            bad(combo("c", &["t1", "t2"], 1, 101)),
            ["combinations[0].max_party"]
        );
        let mut r = paris();
        r.combinations = vec![
            combo("c", &["t2", "t1"], 1, 6),
            combo("c", &["t1", "t2"], 1, 6),
        ];
        assert_eq!(r.validate().unwrap_err()[0].field, "combinations");
    }
}
