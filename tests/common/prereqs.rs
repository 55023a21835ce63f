//! Prerequisites that tests install for themselves: Python virtual environments with pinned
//! packages and npm packages, under `target/prereqs/`. Each is made once (guarded by a file
//! lock, so concurrent test binaries wait for each other) and reused while its pins stay the
//! same. A prerequisite that cannot be installed fails the test with what to run by hand;
//! nothing is ever skipped.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

pub fn root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let root = target.join("prereqs");
    fs::create_dir_all(&root).expect("create target/prereqs");
    root
}

/// Run `command`; on failure panic with its output and `how_to_fix`.
fn run(command: &mut Command, how_to_fix: &str) {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}\n{how_to_fix}"));
    assert!(
        output.status.success(),
        "{shown} failed ({}):\n{}{}\n{how_to_fix}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// Make `dir` with `make` unless it was already made for the same `pins`.
fn ensure(dir: &Path, pins: &str, make: impl FnOnce(&Path)) {
    let lock = File::create(dir.with_extension("lock")).expect("create prerequisite lock");
    lock.lock().expect("lock prerequisite");
    let stamp = dir.join(".pins");
    let wanted = hex::encode(Sha256::digest(pins.as_bytes()));
    if fs::read_to_string(&stamp).is_ok_and(|have| have == wanted) {
        return;
    }
    if dir.exists() {
        fs::remove_dir_all(dir).expect("remove outdated prerequisite");
    }
    fs::create_dir_all(dir).expect("create prerequisite directory");
    make(dir);
    fs::write(&stamp, wanted).expect("stamp prerequisite");
}

/// A Python virtual environment named `name`, made by running `pip install` once for each
/// of `installs` (argument lists: pinned specifiers, options such as `--no-deps`); returns
/// its `python`. Needs `python3` with `venv` and PyPI access.
pub fn python(name: &str, installs: &[&[&str]]) -> PathBuf {
    let dir = root().join(format!("python-{name}"));
    let how = format!(
        "This test needs a Python 3 venv with {installs:?}. Install python3 and \
         python3-venv (Debian: apt-get install python3-venv) and make PyPI reachable, or \
         run .ci/run, which prepares every test prerequisite."
    );
    let pins: Vec<String> = installs.iter().map(|i| i.join(" ")).collect();
    ensure(&dir, &pins.join("\n"), |dir| {
        run(Command::new("python3").args(["-m", "venv"]).arg(dir), &how);
        for install in installs {
            run(
                Command::new(dir.join("bin/pip"))
                    .args(["install", "-q", "--disable-pip-version-check"])
                    .args(*install),
                &how,
            );
        }
    });
    dir.join("bin/python")
}

/// npm packages (pinned specifiers) installed in a folder named `name`; returns the folder
/// (its `node_modules` holds them). Needs Node.js with npm and registry access.
pub fn npm(name: &str, packages: &[&str]) -> PathBuf {
    let dir = root().join(format!("npm-{name}"));
    let how = format!(
        "This test needs the npm packages {packages:?}. Install Node.js with npm and make the \
         npm registry reachable, or run .ci/run, which prepares every test prerequisite."
    );
    ensure(&dir, &packages.join("\n"), |dir| {
        fs::write(dir.join("package.json"), "{\"private\": true}\n").expect("write package.json");
        run(
            Command::new("npm")
                .current_dir(dir)
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
                .args(packages),
            &how,
        );
    });
    dir
}

/// The Chromium binary browser tests drive: `SWITCHBOARD_CHROMIUM` or `/usr/bin/chromium`.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("SWITCHBOARD_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "This test drives a real Chromium and found none at {}. Install it \
         (Debian: apt-get update && apt-get install -y chromium chromium-driver), set \
         SWITCHBOARD_CHROMIUM to its path, or run .ci/run, which installs it.",
        path.display()
    );
    path
}
