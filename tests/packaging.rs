//! Roster as a user without Rust installs it: the wheel built from `python/roster-server`
//! (maturin, through pip's PEP 517 build), the pytest plugin from `python/pytest-roster`, and
//! the npm tarballs `npm/pack` makes. Each is installed into a fresh environment whose `PATH`
//! holds no Rust toolchain, then driven by a suite written only against what the package
//! offers (`tests/packaging/pytest`, `tests/packaging/node`) and by the packages' README
//! examples, run as written.
//!
//! The wheel is built with the dev profile (`MATURIN_PEP517_ARGS=--profile dev`), which reuses
//! what `cargo test` built; a release wheel differs only in the binary's optimisation
//! (bench/README.md has its size).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{manifest_dir, run, target_dir};

/// The crate's version, which every package carries.
fn crate_version() -> String {
    let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("version = "))
        .expect("a version line");
    line.trim_start_matches("version = ")
        .trim_matches('"')
        .to_owned()
}

/// The current `PATH` without any directory that holds `cargo`, `rustc` or `rustup`, with
/// `first` ahead of it.
fn path_without_rust(first: &Path) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept = std::env::split_paths(&path).filter(|dir| {
        !["cargo", "rustc", "rustup"]
            .iter()
            .any(|t| dir.join(t).exists())
    });
    std::env::join_paths(std::iter::once(first.to_path_buf()).chain(kept))
        .unwrap()
        .into_string()
        .unwrap()
}

/// A command with no Rust in reach: no toolchain on `PATH`, no `ROSTER_BIN`, no cargo
/// variables.
fn without_rust(program: impl AsRef<std::ffi::OsStr>, first_on_path: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PATH", path_without_rust(first_on_path));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name.starts_with("CARGO") || name.starts_with("RUSTUP") || name == "ROSTER_BIN" {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("ROSTER_DATABASE")
        .env_remove("DATABASE_URL")
        .env_remove("ROSTER_LISTEN");
    cmd
}

/// The first fenced block of `lang` in a README, as written.
fn readme_block(readme: &Path, lang: &str) -> String {
    let text = std::fs::read_to_string(readme).unwrap();
    let fence = format!("```{lang}\n");
    let start = text.find(&fence).expect("a fenced example") + fence.len();
    let end = start + text[start..].find("```").expect("a closing fence");
    text[start..end].to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = target_dir().join("packaging").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_wheel_and_the_pytest_plugin_serve_a_suite_without_rust() {
    let version = crate_version();
    let work = fresh_dir("python");
    let wheels = work.join("wheels");
    // pip builds the project as any user's pip does (PEP 517, maturin fetched into an
    // isolated environment), on the same target directory as the tests.
    run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--disable-pip-version-check",
                "-w",
            ])
            .arg(&wheels)
            .arg(manifest_dir().join("python").join("roster-server"))
            .env("MATURIN_PEP517_ARGS", "--profile dev")
            .env("CARGO_TARGET_DIR", target_dir()),
        "pip wheel ./python/roster-server",
    );
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("a wheel");
    let wheel_name = wheel.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        wheel_name.starts_with(&format!("roster_server-{version}-")),
        "{wheel_name}: the crate is at {version}"
    );

    let venv = work.join("venv");
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    );
    let bin = venv.join("bin");
    let packaging = manifest_dir()
        .join("tests")
        .join("packaging")
        .join("pytest");
    // setuptools builds inside the directory it is given: a copy, so the checkout stays clean.
    let plugin = work.join("pytest-roster");
    copy_dir(
        &manifest_dir().join("python").join("pytest-roster"),
        &plugin,
    );
    run(
        without_rust(bin.join("python"), &bin)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(&wheel)
            .arg(&plugin)
            .arg("-r")
            .arg(packaging.join("requirements.txt")),
        "pip install the wheel, pytest-roster and the suite's requirements",
    );
    let which = run(
        without_rust("sh", &bin).args(["-c", "command -v roster; command -v cargo || true"]),
        "which roster",
    );
    assert_eq!(
        String::from_utf8_lossy(&which.stdout).trim(),
        bin.join("roster").to_str().unwrap(),
        "roster is the wheel's and cargo is out of reach"
    );
    let said = run(
        without_rust(bin.join("roster"), &bin).arg("--version"),
        "roster --version",
    );
    assert_eq!(
        String::from_utf8_lossy(&said.stdout).trim(),
        format!("roster {version}")
    );

    // The user's project: the suite, and pytest-roster's README example as a test file.
    let project = work.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(
        packaging.join("test_fixtures.py"),
        project.join("test_fixtures.py"),
    )
    .unwrap();
    let readme = manifest_dir()
        .join("python")
        .join("pytest-roster")
        .join("README.md");
    let example = readme_block(&readme, "python");
    let main_readme = std::fs::read_to_string(manifest_dir().join("README.md")).unwrap();
    assert!(
        main_readme.contains(&example),
        "README.md shows pytest-roster's example as its README does"
    );
    std::fs::write(project.join("test_readme.py"), example).unwrap();

    let pytest = |extra: &[&str], seen: &Path| {
        let out = without_rust(bin.join("python"), &bin)
            .args([
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-W",
                "error::pytest.PytestUnhandledThreadExceptionWarning",
            ])
            .args(extra)
            .env("ROSTER_SERVERS_SEEN", seen)
            .current_dir(&project)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        println!("pytest {extra:?}:\n{text}");
        assert!(out.status.success(), "pytest {extra:?} failed:\n{text}");
        assert!(!text.contains("skipped"), "nothing may be skipped:\n{text}");
        std::fs::read_to_string(seen).unwrap()
    };

    let alone = pytest(&[], &work.join("seen-alone"));
    let servers: std::collections::BTreeSet<&str> = alone.lines().collect();
    assert_eq!(servers.len(), 1, "one server for the session: {servers:?}");

    // A test process killed outright leaves no server: it stops when its stdin closes.
    let killed_dir = work.join("killed");
    std::fs::create_dir_all(&killed_dir).unwrap();
    std::fs::copy(
        manifest_dir().join("tests/packaging/pytest-killed/test_killed.py"),
        killed_dir.join("test_killed.py"),
    )
    .unwrap();
    let noted = work.join("killed-url");
    let killed = without_rust(bin.join("python"), &bin)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .env("ROSTER_KILLED_URL", &noted)
        .current_dir(&killed_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!killed.status.success(), "pytest was killed");
    let url = std::fs::read_to_string(&noted).expect("the test noted its server");
    let addr = url.trim_start_matches("http://").to_owned();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the server of a killed test process still answers on {addr}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // Under xdist each worker starts a server of its own.
    let spread = pytest(&["-n", "2"], &work.join("seen-xdist"));
    let mut by_worker: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for line in spread.lines() {
        let (worker, url) = line.split_once(' ').unwrap();
        by_worker.entry(worker).or_default().insert(url);
    }
    assert_eq!(
        by_worker.keys().copied().collect::<Vec<_>>(),
        ["gw0", "gw1"],
        "{spread}"
    );
    let urls: std::collections::BTreeSet<&str> =
        by_worker.values().flat_map(|u| u.iter().copied()).collect();
    assert!(
        by_worker.values().all(|u| u.len() == 1) && urls.len() == 2,
        "one server per worker: {by_worker:?}"
    );
}

#[test]
fn the_npm_tarballs_install_into_an_empty_project_and_start_a_server() {
    let version = crate_version();
    let work = fresh_dir("npm");
    let tarballs = work.join("tarballs");
    // The tests' own binary, stripped of its debug information as a release's is: the
    // package's layout is what is checked here.
    let binary = work.join("roster");
    run(
        Command::new("strip")
            .arg("-o")
            .arg(&binary)
            .arg(env!("CARGO_BIN_EXE_roster")),
        "strip",
    );
    run(
        Command::new(manifest_dir().join("npm").join("pack"))
            .arg(&binary)
            .arg(&tarballs),
        "npm/pack",
    );
    let server = tarballs.join(format!("roster-server-{version}.tgz"));
    let platform = tarballs.join(format!("roster-server-linux-x64-{version}.tgz"));
    assert!(
        server.exists() && platform.exists(),
        "npm/pack made both tarballs"
    );

    let project = work.join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("package.json"),
        r#"{"name": "an-empty-project", "private": true, "type": "module"}"#,
    )
    .unwrap();
    let node_bin = project.join("node_modules").join(".bin");
    run(
        without_rust("npm", &node_bin)
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .arg(&platform)
            .arg(&server)
            .arg("cloudflare@7.3.0")
            .current_dir(&project),
        "npm install the tarballs",
    );
    let nodes = manifest_dir().join("tests").join("packaging").join("node");
    std::fs::copy(nodes.join("start.test.mjs"), project.join("start.test.mjs")).unwrap();
    let readme = manifest_dir()
        .join("npm")
        .join("roster-server")
        .join("README.md");
    std::fs::write(project.join("readme.test.mjs"), readme_block(&readme, "js")).unwrap();

    let said = run(
        without_rust("npx", &node_bin)
            .args(["--no-install", "roster", "--version"])
            .current_dir(&project),
        "npx roster --version",
    );
    assert_eq!(
        String::from_utf8_lossy(&said.stdout).trim(),
        format!("roster {version}")
    );
    let out = run(
        without_rust("node", &node_bin)
            .args(["--test", "start.test.mjs", "readme.test.mjs"])
            .current_dir(&project),
        "node --test",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        text.contains("# fail 0") && !text.contains("# pass 0"),
        "{text}"
    );
    assert!(text.contains("# skipped 0"), "{text}");
}
