//! The documentation as a reader of a fresh clone meets it: every link resolves to a file
//! inside the clone, and every fixture shown loads with `roster seed` as written.

mod common;

use std::path::{Path, PathBuf};

use common::manifest_dir;

/// Every Markdown file of the checkout, but for build outputs and installed packages.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy();
            if path.is_dir() {
                if !matches!(name.as_ref(), "target" | "node_modules" | ".git") {
                    walk(&path, found);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(manifest_dir(), &mut found);
    found.sort();
    found
}

/// The targets of `[text](target)` and `![alt](target)`, as written.
fn link_targets(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            rest.find(')').map(|end| &rest[..end])
        })
        .filter(|target| !target.contains(char::is_whitespace))
        .collect()
}

#[test]
fn every_link_in_the_docs_resolves_inside_the_clone() {
    let root = manifest_dir().canonicalize().unwrap();
    let files = markdown_files();
    assert!(files.len() >= 6, "{files:?}");
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for target in link_targets(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with("mailto:")
                || target.starts_with('#')
            {
                continue;
            }
            let path = target.split('#').next().unwrap();
            let resolved = file.parent().unwrap().join(path).canonicalize();
            match resolved {
                Ok(p) if p.starts_with(&root) => {}
                _ => broken.push(format!(
                    "{}: {target}",
                    file.strip_prefix(&root).unwrap_or(file).display()
                )),
            }
        }
        assert!(
            !text.contains("../shared/"),
            "{} points outside the clone",
            file.display()
        );
    }
    assert!(
        broken.is_empty(),
        "links that lead nowhere in a clone:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_fixture_in_the_docs_loads() {
    let mut loaded = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for block in text.split("```json\n").skip(1) {
            let block = &block[..block.find("```").expect("a closing fence")];
            let Ok(value) = serde_json::from_str::<serde_json::Value>(block) else {
                continue;
            };
            if !(value.get("users").is_some() || value.get("accounts").is_some()) {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let fixture = dir.path().join("fixture.json");
            std::fs::write(&fixture, block).unwrap();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_roster"))
                .arg("--database")
                .arg(dir.path().join("roster.db"))
                .arg("seed")
                .arg(&fixture)
                .env_remove("DATABASE_URL")
                .env_remove("ROSTER_DATABASE")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "the fixture in {} does not load:\n{}",
                file.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            loaded += 1;
        }
    }
    assert!(loaded >= 1, "docs/operations.md shows a fixture");
}
