//! The peer clients, installed at run time from the public registries into `target/peers/`
//! (never into the repository). Their driver scripts are our own code in `xtask/peers/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use super::deadline::{self, Echo, Finished};

/// What is available to run.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    /// `node` plus `ws` and `sunshine-conversations-client` from npm, when installed.
    pub(crate) node: Option<Runtime>,
    /// `python3` plus `sunshine-conversations-client` from PyPI, when installed.
    pub(crate) python: Option<Runtime>,
    /// What was installed or skipped, for the report.
    pub(crate) notes: Vec<Value>,
}

/// A runtime with its packages: how to start one of the committed scripts.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    program: String,
    scripts: PathBuf,
    env: (&'static str, PathBuf),
}

impl Runtime {
    /// A command running `script` (a file in the committed scripts folder).
    pub(crate) fn command(&self, script: &str) -> Command {
        let mut command = Command::new(&self.program);
        command
            .arg(self.scripts.join(script))
            .env(self.env.0, &self.env.1);
        command
    }
}

/// Installs both peers (skipping what cannot be installed, with the reason).
pub(crate) fn install(root: &Path, target: &Path) -> Peers {
    let mut peers = Peers::default();
    let dir = target.join("peers");
    match install_node(root, &dir.join("node")) {
        Ok((runtime, note)) => {
            peers.node = Some(runtime);
            peers.notes.push(note);
        }
        Err(reason) => {
            eprintln!("xtask bench: SKIPPING the Node peers: {reason}");
            peers
                .notes
                .push(json!({ "peer": "node", "status": "skipped", "reason": reason }));
        }
    }
    match install_python(root, &dir.join("python")) {
        Ok((runtime, note)) => {
            peers.python = Some(runtime);
            peers.notes.push(note);
        }
        Err(reason) => {
            eprintln!("xtask bench: SKIPPING the Python peer: {reason}");
            peers
                .notes
                .push(json!({ "peer": "python", "status": "skipped", "reason": reason }));
        }
    }
    peers
}

/// How long an install may take: minutes more than a slow registry needs, so only a hung one
/// is killed (npm and pip also get network timeouts of their own, below).
const INSTALL_LIMIT: Duration = Duration::from_secs(600);
/// How long `node --version` and the like may take.
const VERSION_LIMIT: Duration = Duration::from_secs(60);

fn version(program: &str, arg: &str) -> Result<String, String> {
    let out = deadline::run(Command::new(program).arg(arg), VERSION_LIMIT, Echo::Quiet)
        .map_err(|e| format!("`{program}` not found: {e}"))?;
    if out.killed {
        return Err(format!("`{program} {arg}` {}", out.describe()));
    }
    let text = out.stdout.trim().to_owned();
    let text = if text.is_empty() {
        out.stderr.trim().to_owned()
    } else {
        text
    };
    Ok(text)
}

/// Runs an installer; a failure (a deadline hit included) keeps the end of its output as the
/// reason.
fn run_installer(command: &mut Command, what: &str) -> Result<(), String> {
    eprintln!("xtask bench: installing {what} ...");
    let out = deadline::run(command, INSTALL_LIMIT, Echo::Quiet)
        .map_err(|e| format!("cannot run the installer for {what}: {e}"))?;
    installer_outcome(&out, what)
}

/// Why an installer's run is a failure, if it is.
fn installer_outcome(out: &Finished, what: &str) -> Result<(), String> {
    if out.success() {
        return Ok(());
    }
    Err(format!(
        "installing {what} failed ({}): {} (is the registry reachable?)",
        out.describe(),
        out.stderr_tail(6)
    ))
}

/// `npm install` of the pins in `dir/package.json` into `dir`. A stalled fetch fails after a
/// minute, retried twice, rather than waiting for the install's deadline.
fn npm_install(dir: &Path) -> Command {
    let mut command = Command::new("npm");
    command
        .args(["install", "--no-audit", "--no-fund", "--omit=dev"])
        .args(["--fetch-timeout=60000", "--fetch-retries=2"])
        .arg("--prefix")
        .arg(dir);
    command
}

/// `pip install` of `requirements` into `dir`, with network timeouts like npm's (pip's are in
/// seconds).
fn pip_install(dir: &Path, requirements: &Path) -> Command {
    let mut command = Command::new("python3");
    command
        .args(["-m", "pip", "install", "--quiet"])
        .args(["--disable-pip-version-check", "--upgrade"])
        .args(["--timeout", "60", "--retries", "2"])
        .arg("--target")
        .arg(dir)
        .arg("-r")
        .arg(requirements);
    command
}

/// The stamp written after a successful `npm install`: the pins it installed.
const NODE_STAMP: &str = ".installed-package.json";

/// The packages the pin file names (`dependencies`), sorted.
fn node_packages(pins: &str) -> Result<Vec<String>, String> {
    let pins: Value =
        serde_json::from_str(pins).map_err(|e| format!("xtask/peers/node/package.json: {e}"))?;
    let deps = pins["dependencies"]
        .as_object()
        .ok_or("xtask/peers/node/package.json has no `dependencies`")?;
    Ok(deps.keys().cloned().collect())
}

/// The pinned packages that `dir/node_modules` lacks.
fn missing_node_packages(dir: &Path, packages: &[String]) -> Vec<String> {
    packages
        .iter()
        .filter(|p| {
            !dir.join("node_modules")
                .join(p)
                .join("package.json")
                .is_file()
        })
        .cloned()
        .collect()
}

/// Whether `npm install` must run: no install of these pins finished (the stamp is written
/// only after a successful one), or a pinned package is missing.
fn node_needs_install(dir: &Path, pins: &str, packages: &[String]) -> bool {
    let stamp = std::fs::read_to_string(dir.join(NODE_STAMP)).unwrap_or_default();
    stamp != pins || !missing_node_packages(dir, packages).is_empty()
}

/// Copies the pin file and installs when no install of these pins has finished, or a package
/// is missing; a package still missing after the install is a skip.
fn install_node(root: &Path, dir: &Path) -> Result<(Runtime, Value), String> {
    let node = version("node", "--version")?;
    let pins = std::fs::read_to_string(root.join("xtask/peers/node/package.json"))
        .map_err(|e| format!("xtask/peers/node/package.json: {e}"))?;
    let packages = node_packages(&pins)?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if node_needs_install(dir, &pins, &packages) {
        // npm reads the pins from `dir/package.json`; the stamp says an install of them
        // finished, so it goes only after one did.
        let _ = std::fs::remove_file(dir.join(NODE_STAMP));
        std::fs::write(dir.join("package.json"), &pins).map_err(|e| e.to_string())?;
        let _ = std::fs::remove_file(dir.join("package-lock.json"));
        run_installer(
            &mut npm_install(dir),
            &format!("{} from npm", packages.join(" and ")),
        )?;
        let missing = missing_node_packages(dir, &packages);
        if !missing.is_empty() {
            return Err(format!(
                "`npm install` finished but {} lacks {}",
                dir.join("node_modules").display(),
                missing.join(", ")
            ));
        }
        std::fs::write(dir.join(NODE_STAMP), &pins).map_err(|e| e.to_string())?;
    }
    let runtime = Runtime {
        program: "node".to_owned(),
        scripts: root.join("xtask/peers/node"),
        env: ("NODE_PATH", dir.join("node_modules")),
    };
    let versions = packages.iter().map(|p| {
        let manifest = dir.join("node_modules").join(p).join("package.json");
        let version = std::fs::read_to_string(manifest)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".to_owned());
        (p, version)
    });
    let note = json!({
        "peer": "node", "status": "installed", "runtime": node,
        "path": dir.strip_prefix(root).unwrap_or(dir),
        "packages": versions.map(|(p, v)| format!("{p}@{v}")).collect::<Vec<_>>(),
    });
    Ok((runtime, note))
}

/// The Python package the bench drives, as pip names it and as it names its `dist-info`.
const PYTHON_PACKAGE: (&str, &str) = (
    "sunshine-conversations-client",
    "sunshine_conversations_client",
);

/// The version `requirements` pins the package to (`name==version`).
fn python_pin(requirements: &str) -> Result<String, String> {
    requirements
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .find_map(|l| {
            let (name, version) = l.split_once("==")?;
            let name = name.trim().to_lowercase().replace('_', "-");
            (name == PYTHON_PACKAGE.0).then(|| version.trim().to_owned())
        })
        .ok_or_else(|| {
            format!(
                "xtask/peers/python/requirements.txt pins no `{}==VERSION`",
                PYTHON_PACKAGE.0
            )
        })
}

/// The installed version, read from the pinned version's `dist-info` only: an install of
/// another pin may have left its own behind, and the report must name what runs.
fn installed_python_version(dir: &Path, pinned: &str) -> Result<String, String> {
    let dist_info = format!("{}-{pinned}.dist-info", PYTHON_PACKAGE.1);
    if dir.join(&dist_info).is_dir() {
        Ok(pinned.to_owned())
    } else {
        Err(format!(
            "`pip install` finished but {} lacks {dist_info}",
            dir.display()
        ))
    }
}

/// Empties `dir` for an install of new pins: `pip install --target` replaces the package's
/// folders but leaves the old version's `dist-info` (and any module the new version dropped)
/// importable beside the new one.
fn clear_python_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Installs the pins into an emptied `dir` when no install of them has finished (the stamp is
/// written only after one did) or the package is missing; reports the pinned version only
/// once its `dist-info` is there.
fn install_python(root: &Path, dir: &Path) -> Result<(Runtime, Value), String> {
    let python = version("python3", "--version")?;
    let pins = std::fs::read_to_string(root.join("xtask/peers/python/requirements.txt"))
        .map_err(|e| format!("xtask/peers/python/requirements.txt: {e}"))?;
    let pinned = python_pin(&pins)?;
    let stamp = dir.join(".installed-requirements.txt");
    let installed = std::fs::read_to_string(&stamp).unwrap_or_default();
    if installed != pins
        || !dir.join(PYTHON_PACKAGE.1).exists()
        || installed_python_version(dir, &pinned).is_err()
    {
        clear_python_dir(dir)?;
        run_installer(
            &mut pip_install(dir, &root.join("xtask/peers/python/requirements.txt")),
            "sunshine-conversations-client from PyPI",
        )?;
        installed_python_version(dir, &pinned)?;
        std::fs::write(&stamp, &pins).map_err(|e| e.to_string())?;
    }
    let package = format!(
        "{}@{}",
        PYTHON_PACKAGE.0,
        installed_python_version(dir, &pinned)?
    );
    let runtime = Runtime {
        program: "python3".to_owned(),
        scripts: root.join("xtask/peers/python"),
        env: ("PYTHONPATH", dir.to_path_buf()),
    };
    let note = json!({
        "peer": "python", "status": "installed", "runtime": python,
        "path": dir.strip_prefix(root).unwrap_or(dir),
        "packages": [package],
    });
    Ok((runtime, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PINS: &str =
        r#"{"dependencies": {"ws": "8.23.0", "sunshine-conversations-client": "14.1.0"}}"#;

    fn add_package(dir: &Path, name: &str) {
        let at = dir.join("node_modules").join(name);
        std::fs::create_dir_all(&at).unwrap();
        std::fs::write(at.join("package.json"), r#"{"version":"1"}"#).unwrap();
    }

    #[test]
    fn an_installer_killed_at_its_deadline_is_a_failure_with_the_reason() {
        let mut hung = Command::new("sh");
        hung.args(["-c", "exec sleep 30"]);
        let out = deadline::run(&mut hung, Duration::from_millis(100), Echo::Quiet).unwrap();
        let reason = installer_outcome(&out, "ws from npm").unwrap_err();
        assert!(
            reason.starts_with("installing ws from npm failed (killed at its deadline"),
            "{reason}"
        );
        let mut fine = Command::new("true");
        let out = deadline::run(&mut fine, Duration::from_secs(600), Echo::Quiet).unwrap();
        assert_eq!(installer_outcome(&out, "ws"), Ok(()));
    }

    #[test]
    fn installers_get_network_timeouts_of_their_own() {
        let args = |c: Command| -> Vec<String> {
            c.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let npm = args(npm_install(Path::new("/p")));
        assert!(
            npm.iter().any(|a| a.starts_with("--fetch-timeout="))
                && npm.iter().any(|a| a.starts_with("--fetch-retries=")),
            "{npm:?}"
        );
        let pip = args(pip_install(Path::new("/p"), Path::new("/r.txt")));
        let valued = |flag: &str| {
            pip.iter()
                .position(|a| a == flag)
                .and_then(|i| pip.get(i + 1))
                .is_some_and(|v| v.parse::<u32>().is_ok())
        };
        assert!(valued("--timeout") && valued("--retries"), "{pip:?}");
    }

    #[test]
    fn node_install_is_trusted_only_after_it_finished_with_every_package() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let packages = node_packages(PINS).unwrap();
        assert_eq!(packages, ["sunshine-conversations-client", "ws"]);
        // A failed install left the pins in package.json and only `ws` behind: not installed.
        std::fs::write(dir.join("package.json"), PINS).unwrap();
        add_package(dir, "ws");
        assert!(node_needs_install(dir, PINS, &packages));
        assert_eq!(
            missing_node_packages(dir, &packages),
            ["sunshine-conversations-client"]
        );
        // Every package there but no stamp (the install did not finish): still not installed.
        add_package(dir, "sunshine-conversations-client");
        assert!(node_needs_install(dir, PINS, &packages));
        // The stamp of a finished install of these pins, every package there: installed.
        std::fs::write(dir.join(NODE_STAMP), PINS).unwrap();
        assert!(!node_needs_install(dir, PINS, &packages));
        // A package gone since: install again.
        std::fs::remove_dir_all(dir.join("node_modules/sunshine-conversations-client")).unwrap();
        assert!(node_needs_install(dir, PINS, &packages));
    }

    #[test]
    fn the_python_version_reported_is_the_pinned_one_from_a_clean_install() {
        let pins = "# comment\nsunshine-conversations-client==17.0.1\n";
        assert_eq!(python_pin(pins).as_deref(), Ok("17.0.1"));
        assert!(python_pin("requests==2.0\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("python");
        let old = dir.join("sunshine_conversations_client-16.0.0.dist-info");
        std::fs::create_dir_all(&old).unwrap();
        // Only the previous pin's install there: not the pinned version, whatever read_dir
        // gives first.
        assert!(installed_python_version(&dir, "17.0.1").is_err());
        // Both there (pip --target --upgrade after a pin change): the pinned one is named.
        let new = dir.join("sunshine_conversations_client-17.0.1.dist-info");
        std::fs::create_dir_all(&new).unwrap();
        assert_eq!(
            installed_python_version(&dir, "17.0.1").as_deref(),
            Ok("17.0.1")
        );
        // A new install starts from an empty folder: nothing of the old pin stays importable.
        std::fs::create_dir_all(dir.join("sunshine_conversations_client")).unwrap();
        clear_python_dir(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }
}
