//! `vitals completions SHELL` and `vitals man DIR`: shell completions and manual pages,
//! generated from the clap definition itself so they can never disagree with the binary.

use anyhow::{Context, Result};
use clap::Command;
use std::path::Path;

/// Writes the completion script for `shell` to `out`.
pub fn completions(cmd: &mut Command, shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, cmd, name, out);
}

/// Writes `vitals.1` and one page per subcommand (`vitals-serve.1`, `vitals-config-check.1`, …)
/// into `dir`; returns the file names written.
pub fn man_pages(cmd: Command, dir: &Path) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    write_pages(cmd.clone(), cmd.get_name(), dir, &mut written)?;
    Ok(written)
}

fn write_pages(cmd: Command, name: &str, dir: &Path, written: &mut Vec<String>) -> Result<()> {
    // A subcommand's page is titled by its full name, as `man vitals-config-check` expects.
    let cmd = cmd.name(name.to_string()).bin_name(name.replace('-', " "));
    let file = format!("{name}.1");
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .with_context(|| format!("rendering {file}"))?;
    std::fs::write(dir.join(&file), buf)
        .with_context(|| format!("cannot write {}", dir.join(&file).display()))?;
    written.push(file);
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        write_pages(
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            dir,
            written,
        )?;
    }
    Ok(())
}
