//! ODS reference data: which organisations exist, and when they opened and
//! closed.

use std::collections::HashMap;
use std::path::Path;

use lhcie_model::OdsCode;
use time::Date;
use time::macros::format_description;

use crate::ConfigError;
use crate::error::Problems;

/// An organisation as the ODS reference data describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Its ODS code.
    pub ods_code: OdsCode,
    /// Its registered name.
    pub name: String,
    /// Its postcode, if given.
    pub postcode: Option<String>,
    /// When it opened.
    pub open_date: Date,
    /// When it closed, if it has.
    pub close_date: Option<Date>,
}

impl Organisation {
    /// Whether the organisation is open on `day` (open on its open date,
    /// closed from the day after its close date).
    pub fn is_open_on(&self, day: Date) -> bool {
        self.open_date <= day && self.close_date.is_none_or(|closed| day <= closed)
    }
}

/// Every organisation in the reference files, by ODS code.
#[derive(Debug, Clone, Default)]
pub struct OdsRegister {
    organisations: HashMap<OdsCode, Organisation>,
}

impl OdsRegister {
    /// Loads and merges CSV files with at least the columns
    /// `ods_code,name,open_date,close_date` (dates `YYYYMMDD`). An ODS code
    /// listed twice is an error.
    pub fn load(files: &[impl AsRef<Path>]) -> Result<Self, ConfigError> {
        let mut register = Self::default();
        for file in files {
            register.load_file(file.as_ref())?;
        }
        Ok(register)
    }

    fn load_file(&mut self, file: &Path) -> Result<(), ConfigError> {
        let mut reader = csv::Reader::from_path(file)
            .map_err(|e| ConfigError::one(file, "", format!("cannot read the file: {e}")))?;
        let headers = reader
            .headers()
            .map_err(|e| ConfigError::one(file, "", format!("cannot read the header row: {e}")))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h == name);
        let (Some(code_at), Some(name_at), Some(open_at), Some(close_at)) = (
            column("ods_code"),
            column("name"),
            column("open_date"),
            column("close_date"),
        ) else {
            return Err(ConfigError::one(
                file,
                "",
                "the header row must have the columns ods_code, name, open_date and close_date",
            ));
        };
        let postcode_at = column("postcode");
        let mut problems = Problems::default();
        for (index, row) in reader.records().enumerate() {
            let line = index + 2;
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    problems.add(format!("line {line}"), format!("unreadable row: {e}"));
                    continue;
                }
            };
            let field = |at: usize| row.get(at).unwrap_or("").trim();
            let ods_code = match OdsCode::parse(field(code_at)) {
                Ok(code) => code,
                Err(e) => {
                    problems.add(format!("line {line}.ods_code"), e.to_string());
                    continue;
                }
            };
            let open_date = match parse_date(field(open_at)) {
                Some(date) => date,
                None => {
                    problems.add(
                        format!("line {line}.open_date"),
                        "expected a date as YYYYMMDD",
                    );
                    continue;
                }
            };
            let close_date = match field(close_at) {
                "" => None,
                text => match parse_date(text) {
                    Some(date) => Some(date),
                    None => {
                        problems.add(
                            format!("line {line}.close_date"),
                            "expected a date as YYYYMMDD, or nothing while open",
                        );
                        continue;
                    }
                },
            };
            let organisation = Organisation {
                ods_code: ods_code.clone(),
                name: field(name_at).to_owned(),
                postcode: postcode_at
                    .map(field)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
                open_date,
                close_date,
            };
            if self
                .organisations
                .insert(ods_code.clone(), organisation)
                .is_some()
            {
                problems.add(
                    format!("line {line}.ods_code"),
                    format!("{ods_code} is listed more than once in the reference data"),
                );
            }
        }
        problems.into_result(file)
    }

    /// The organisation with this code, if the reference data lists it.
    pub fn get(&self, code: &OdsCode) -> Option<&Organisation> {
        self.organisations.get(code)
    }

    /// How many organisations are listed.
    pub fn len(&self) -> usize {
        self.organisations.len()
    }

    /// Whether no organisation is listed.
    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
    }
}

fn parse_date(text: &str) -> Option<Date> {
    Date::parse(text, format_description!("[year][month][day]")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn loads_the_shipped_reference_files() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
        let register = OdsRegister::load(&[
            root.join("london_nhs_trusts.csv"),
            root.join("london_gp_practices_sample.csv"),
        ])
        .unwrap();
        assert_eq!(register.len(), 38 + 47);
        let rap = register.get(&OdsCode::parse("RAP").unwrap()).unwrap();
        assert_eq!(rap.name, "NORTH MIDDLESEX UNIVERSITY HOSPITAL NHS TRUST");
        assert_eq!(rap.close_date, Some(date!(2024 - 12 - 31)));
        assert!(rap.is_open_on(date!(2024 - 12 - 31)));
        assert!(!rap.is_open_on(date!(2025 - 01 - 01)));
        let online = register.get(&OdsCode::parse("K0N6A").unwrap()).unwrap();
        assert!(!online.is_open_on(date!(2026 - 05 - 31)));
        assert!(online.is_open_on(date!(2026 - 06 - 01)));
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orgs.csv");
        std::fs::write(
            &file,
            "ods_code,name,open_date,close_date\nRAL,ROYAL FREE,19910401,\nral,LOWER,19910401,\nRRV,UCLH,1996-04-01,\nRAL,AGAIN,19910401,\n",
        )
        .unwrap();
        let error = OdsRegister::load(&[&file]).unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["line 3.ods_code", "line 4.open_date", "line 5.ods_code"]
        );
        assert!(error.problems[2].message.contains("more than once"));
    }

    #[test]
    fn missing_columns_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("orgs.csv");
        std::fs::write(&file, "code,name\nRAL,ROYAL FREE\n").unwrap();
        let error = OdsRegister::load(&[&file]).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("ods_code, name, open_date and close_date")
        );
    }
}
