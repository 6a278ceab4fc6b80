//! The relay's libp2p identity: an ed25519 key kept on disk so the PeerId
//! (which pages learn from /api/info and peers put in their circuit
//! addresses) stays the same across restarts.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use libp2p::identity::{DecodingError, Keypair};

/// Each message names the file and the reason, so the binary prints one line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("cannot read identity key {}: {reason}", path.display())]
    Read { path: PathBuf, reason: io::Error },
    #[error("identity key {} is corrupt (expected a protobuf-encoded ed25519 keypair): {reason}; \
             move it away to create a new one", path.display())]
    Decode {
        path: PathBuf,
        reason: DecodingError,
    },
    #[error("cannot create identity key {}: {reason}", path.display())]
    Write { path: PathBuf, reason: io::Error },
    #[error("cannot encode the new identity key: {0}")]
    Encode(DecodingError),
}

/// Whether [`load_or_create`] found a key or made one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Loaded,
    Created,
}

/// Reads the keypair at `path`, or generates one and writes it there (mode
/// 0600, never overwriting a file that appeared meanwhile).
pub fn load_or_create(path: &Path) -> Result<(Keypair, Origin), IdentityError> {
    match fs::read(path) {
        Ok(bytes) => return decode(path, &bytes).map(|kp| (kp, Origin::Loaded)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(reason) => {
            return Err(IdentityError::Read {
                path: path.into(),
                reason,
            })
        }
    }

    let keypair = Keypair::generate_ed25519();
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(IdentityError::Encode)?;
    match write_new(path, &bytes) {
        Ok(()) => Ok((keypair, Origin::Created)),
        // Another process created it between our read and write: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let bytes = fs::read(path).map_err(|reason| IdentityError::Read {
                path: path.into(),
                reason,
            })?;
            decode(path, &bytes).map(|kp| (kp, Origin::Loaded))
        }
        Err(reason) => Err(IdentityError::Write {
            path: path.into(),
            reason,
        }),
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Keypair, IdentityError> {
    Keypair::from_protobuf_encoding(bytes).map_err(|reason| IdentityError::Decode {
        path: path.into(),
        reason,
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if written.is_err() {
        // A half-written key would fail every later start; leave nothing.
        let _ = fs::remove_file(path);
    }
    written
}

/// A key readable by others is a weaker identity; say so, but keep going.
#[cfg(unix)]
pub fn warn_if_exposed(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                "identity key {} has mode {mode:o}; 600 is advised",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
pub fn warn_if_exposed(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.key");
        let (first, origin) = load_or_create(&path).expect("create");
        assert_eq!(origin, Origin::Created);
        let (again, origin) = load_or_create(&path).expect("reload");
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(first.public().to_peer_id(), again.public().to_peer_id());
        assert!(first.clone().try_into_ed25519().is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn created_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.key");
        load_or_create(&path).expect("create");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.key");
        fs::write(&path, b"not a key").expect("write");
        let err = load_or_create(&path).expect_err("corrupt key");
        assert!(matches!(err, IdentityError::Decode { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("corrupt"),
            "{msg}"
        );
        // The corrupt file is left alone for the operator to inspect.
        assert_eq!(fs::read(&path).expect("read"), b"not a key");
    }

    #[test]
    fn unreadable_path_is_an_error() {
        // Root can read any file, so use a directory: reading it fails for everyone.
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load_or_create(dir.path()).expect_err("directory");
        assert!(matches!(err, IdentityError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn missing_parent_dir_is_a_write_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no/such/dir/relay.key");
        let err = load_or_create(&path).expect_err("no parent");
        assert!(matches!(err, IdentityError::Write { .. }), "{err:?}");
        assert!(err.to_string().contains("no/such/dir/relay.key"));
    }
}
