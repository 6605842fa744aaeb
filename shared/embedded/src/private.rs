//! Files only the runtime's user may read: the database (it holds password hashes, MFA secrets and
//! the local identity provider's signing key) and the local signing secret. Created `0600`, and
//! tightened to `0600` when found wider; the data directory is created `0700`.

use std::io;
use std::path::Path;

/// Creates `dir` (and its parents) readable by its owner only, if it does not exist yet. An
/// existing directory is left as it is: it may be one the user chose and shares.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Open options that create a file readable by its owner only.
fn owner_only() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes sure `path` exists and only its owner can read or write it.
pub fn ensure_file(path: &Path) -> io::Result<()> {
    drop(owner_only().append(true).open(path)?);
    restrict(path)
}

/// Writes `bytes` to `path`, which only its owner can read or write, before any byte lands.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = owner_only().write(true).truncate(true).open(path)?;
    restrict(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_directories_are_the_owners_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        create_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        write_file(&dir.join("secret"), b"k").unwrap();
        assert_eq!(mode(&dir.join("secret")), 0o600);
        ensure_file(&dir.join("db")).unwrap();
        assert_eq!(mode(&dir.join("db")), 0o600);
    }

    #[test]
    fn a_world_readable_file_from_before_is_tightened() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("amanar.redb");
        std::fs::write(&path, b"old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        ensure_file(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"old", "the content is kept");
    }
}
