//! Named, versioned workload files (`bench/workloads/*.json`): a list of `run` flags, and
//! optionally an offered rate taken from another workload's measured peak.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::cli::LoadArgs;
use crate::Error;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadFile {
    pub name: String,
    pub version: u32,
    pub description: String,
    /// `run` flags, e.g. ["--pipeline", "16", "--ratio", "0:1", "--fill"].
    pub args: Vec<String>,
    /// Open loop at a fraction of a peer's peak measured by another workload.
    #[serde(default)]
    pub rate_from: Option<RateFrom>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateFrom {
    /// The closed-loop workload whose ops/s sets the rate.
    pub workload: String,
    /// Whose ops/s (a server name as `compare` names them, e.g. "redis").
    pub server: String,
    pub fraction: f64,
}

/// Parses a workload's flag list (later flags override earlier ones).
#[derive(Parser)]
#[command(no_binary_name = true, args_override_self = true)]
struct Flags {
    #[command(flatten)]
    load: LoadArgs,
}

impl WorkloadFile {
    pub fn load(path: &Path) -> Result<WorkloadFile, Error> {
        let text =
            std::fs::read_to_string(path).map_err(Error::io(format!("read {}", path.display())))?;
        let w: WorkloadFile = serde_json::from_str(&text)
            .map_err(|e| Error::Usage(format!("workload {}: {e}", path.display())))?;
        w.load_args(&[])?;
        if let Some(r) = &w.rate_from {
            if !(r.fraction > 0.0 && r.fraction.is_finite()) {
                return Err(Error::Usage(format!(
                    "workload {}: rate_from.fraction must be > 0",
                    path.display()
                )));
            }
        }
        Ok(w)
    }

    /// The workload's flags with `extra` flags applied over them.
    pub fn load_args(&self, extra: &[String]) -> Result<LoadArgs, Error> {
        Flags::try_parse_from(self.args.iter().chain(extra))
            .map(|f| f.load)
            .map_err(|e| Error::Usage(format!("workload {}: {e}", self.name)))
    }

    /// `name@vVERSION`.
    pub fn id(&self) -> String {
        format!("{}@v{}", self.name, self.version)
    }
}

/// Every `*.json` in `dir`, by file name.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(Error::io(format!("list workloads in {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_workloads_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/workloads");
        let files = list(&dir).unwrap();
        assert!(files.len() >= 5, "{files:?}");
        for f in files {
            let w = WorkloadFile::load(&f).unwrap();
            assert_eq!(f.file_stem().unwrap().to_str().unwrap(), w.name);
        }
    }

    #[test]
    fn extra_flags_override() {
        let w = WorkloadFile {
            name: "x".into(),
            version: 1,
            description: String::new(),
            args: vec!["--pipeline".into(), "16".into()],
            rate_from: None,
        };
        assert_eq!(w.load_args(&[]).unwrap().pipeline, 16);
        assert_eq!(
            w.load_args(&["--pipeline".into(), "4".into()])
                .unwrap()
                .pipeline,
            4
        );
        assert!(w.load_args(&["--bogus".into()]).is_err());
    }
}
