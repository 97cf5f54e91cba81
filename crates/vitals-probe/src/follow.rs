//! Following a growing file like `tail -F`: appended lines are handed out once each, across
//! rotation (the path names a new file: the rest of the old one is read first) and truncation
//! in place (copytruncate: reading starts again from the top). Shared by the `[sla]` follower
//! and the `log` check.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Most bytes read from one file per poll unless the caller asks for less.
pub const READ_CAP: usize = 64 * 1024 * 1024;
/// A line longer than this is handed out empty (bounded memory on a file without newlines).
pub const LINE_CAP: usize = 1024 * 1024;

/// One followed file.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    inode: u64,
    offset: u64,
    partial: Vec<u8>,
}

impl Follower {
    /// Starts at the current end of the file (only what is appended from now on counts); a
    /// file that does not exist yet is read from its start once it appears.
    pub fn new(path: PathBuf) -> Follower {
        Follower::starting_back(path, 0)
    }

    /// Starts `back` bytes before the current end (at the next line start), e.g. to look at
    /// the recent past once.
    pub fn starting_back(path: PathBuf, back: u64) -> Follower {
        let mut f = Follower {
            path,
            file: None,
            inode: 0,
            offset: 0,
            partial: Vec::new(),
        };
        if let Ok(file) = File::open(&f.path) {
            if let Ok(meta) = file.metadata() {
                f.inode = meta.ino();
                f.offset = meta.len().saturating_sub(back);
                f.file = Some(file);
            }
        }
        if f.offset > 0 && back > 0 {
            // Mid-line: the first, partial line is skipped.
            f.skip_to_line_start();
        }
        f
    }

    fn skip_to_line_start(&mut self) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut byte = [0u8; 1];
        if file.seek(SeekFrom::Start(self.offset - 1)).is_err() {
            return;
        }
        if file.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] == b'\n' {
            return;
        }
        let mut skip = Vec::new();
        let _ = (&mut *file).take(LINE_CAP as u64).read_to_end(&mut skip);
        if let Some(i) = skip.iter().position(|b| *b == b'\n') {
            self.offset += i as u64 + 1;
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_from_handle(
        &mut self,
        cap: usize,
        line: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<bool> {
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        let n = file.take(cap as u64).read_to_end(&mut buf)?;
        self.offset += n as u64;
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                if self.partial.is_empty() {
                    line(&buf[start..i]);
                } else {
                    self.partial.extend_from_slice(&buf[start..i]);
                    let whole = std::mem::take(&mut self.partial);
                    line(&whole);
                }
                start = i + 1;
            }
        }
        self.partial.extend_from_slice(&buf[start..]);
        if self.partial.len() > LINE_CAP {
            line(&self.partial[..0]); // handed out as one empty (malformed) line
            self.partial.clear();
        }
        Ok(n == cap)
    }

    /// Reads what was appended since the last poll (at most [`READ_CAP`] bytes), handling
    /// rotation and truncation.
    pub fn poll(&mut self, line: &mut dyn FnMut(&[u8])) -> std::io::Result<()> {
        self.poll_capped(READ_CAP, line).map(|_| ())
    }

    /// Like [`poll`](Self::poll) reading at most `cap` bytes; `true` when more is waiting.
    pub fn poll_capped(
        &mut self,
        cap: usize,
        line: &mut dyn FnMut(&[u8]),
    ) -> std::io::Result<bool> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            // Rotated away and not recreated yet: finish the old file.
            Err(_) => return self.read_from_handle(cap, line),
        };
        if self.file.is_none() || meta.ino() != self.inode {
            // Rotation (or first appearance): drain the old file, then start the new one.
            if self.read_from_handle(cap, line)? {
                return Ok(true);
            }
            self.file = Some(File::open(&self.path)?);
            self.inode = meta.ino();
            self.offset = 0;
            self.partial.clear();
        } else if meta.len() < self.offset {
            // Truncated in place (copytruncate): start again from the top.
            self.offset = 0;
            self.partial.clear();
        }
        self.read_from_handle(cap, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn starting_back_skips_the_partial_first_line_and_caps_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, "first line\nsecond line\nthird\n").unwrap();
        let mut f = Follower::starting_back(path.clone(), 15);
        let mut lines = Vec::new();
        f.poll(&mut |l| lines.push(String::from_utf8_lossy(l).into_owned()))
            .unwrap();
        assert_eq!(lines, vec!["third"]);
        let mut f = Follower::starting_back(path.clone(), 1000);
        let mut lines = Vec::new();
        let more = f
            .poll_capped(12, &mut |l| {
                lines.push(String::from_utf8_lossy(l).into_owned())
            })
            .unwrap();
        assert!(more);
        assert_eq!(lines, vec!["first line"]);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"fourth\n")
            .unwrap();
        let more = f
            .poll_capped(1000, &mut |l| {
                lines.push(String::from_utf8_lossy(l).into_owned())
            })
            .unwrap();
        assert!(!more);
        assert_eq!(lines, vec!["first line", "second line", "third", "fourth"]);
    }
}
