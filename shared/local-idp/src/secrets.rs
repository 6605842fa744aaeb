//! The local provider's secrets: random values and codes, the hashes codes and tokens are stored
//! as, and argon2id password hashing on its own few threads ([`HashPool`]).

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::{Digest, Sha256};

use amanar_accounts::identity::IdentityError;

pub(crate) fn unavailable(error: impl std::fmt::Display) -> IdentityError {
    IdentityError::Unavailable(error.to_string())
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

/// A uniformly random six-digit code.
pub(crate) fn six_digits() -> String {
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>());
        // Reject the top sliver so every code is equally likely.
        if n < u32::MAX - (u32::MAX % 1_000_000) {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Feeds each part followed by a NUL, so no two lists of parts feed the same bytes.
fn nul_separated(parts: &[&str], mut feed: impl FnMut(&[u8])) {
    for part in parts {
        feed(part.as_bytes());
        feed(&[0]);
    }
}

/// HMAC-SHA256 of the parts (NUL-separated) under `key`, as hex: how mailed codes are stored.
pub(crate) fn hmac_hex(key: &[u8], parts: &[&str]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    nul_separated(parts, |bytes| mac.update(bytes));
    hex::encode(mac.finalize().into_bytes())
}

/// The key mailed codes are stored under, derived from the runtime's local secret (HMAC-SHA256
/// of a fixed label), so it never doubles as the key the secret itself is for (blob URLs).
pub(crate) fn code_key(local_secret: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(local_secret).expect("HMAC takes any key length");
    mac.update(b"amanar local-idp mailed codes");
    mac.finalize().into_bytes().to_vec()
}

pub(crate) fn sha256_hex(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    nul_separated(parts, |bytes| hash.update(bytes));
    hex::encode(hash.finalize())
}

/// OWASP's argon2id baseline: 19 MiB, two passes, one lane.
pub(crate) fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), the
/// format `argon2`'s own `PasswordHasher` writes, using `memory` as argon2's working blocks.
pub(crate) fn hash_password(
    argon2: &Argon2<'_>,
    password: &str,
    memory: &mut Vec<Block>,
) -> Result<String, IdentityError> {
    let raw_salt = random_bytes::<16>();
    let salt = SaltString::encode_b64(&raw_salt).map_err(unavailable)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    grow(memory, argon2.params());
    argon2
        .hash_password_into_with_memory(password.as_bytes(), &raw_salt, &mut out, &mut **memory)
        .map_err(unavailable)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2.params().try_into().map_err(unavailable)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(unavailable)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches a PHC hash, with the hash's own parameters, in constant time.
pub(crate) fn password_matches(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let mut matches = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let expected = parsed.hash?;
        let mut out = vec![0u8; expected.len()];
        grow(memory, &params);
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut **memory)
            .ok()?;
        Some(expected == Output::new(&out).ok()?)
    };
    matches().unwrap_or(false)
}

/// Makes `memory` hold the blocks `params` need (allocated once per hashing thread, then reused).
fn grow(memory: &mut Vec<Block>, params: &Params) {
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::new());
    }
}

/// Runs argon2 on a fixed set of threads, at most one hash per thread, with the callers beyond
/// that waiting their turn. Each hash takes 19 MiB; on Tokio's blocking pool (up to 512 threads,
/// each with its own allocator arena keeping what it freed) 80 parallel logins grew the process
/// by 551 MiB in `tests/login_flood.rs` (1.35 GB in the security review's run against the local
/// runtime). Here the memory is bounded by the thread count, and a caller that waits longer than
/// `wait` gets [`IdentityError::Unavailable`] (a 503 with `Retry-After`).
pub(crate) struct HashPool {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Job>>,
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
}

/// Work for a hashing thread, given the thread's argon2 blocks.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

impl HashPool {
    pub(crate) fn new(threads: usize, wait: std::time::Duration) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    // Each thread's argon2 memory, kept between hashes: the allocator never sees
                    // 19 MiB come and go, so the pool's memory is its thread count times 19 MiB.
                    let mut memory = Vec::new();
                    loop {
                        // The lock is held only to take a job; the pool ends with its sender.
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            // A panicking hash drops its answer (the caller gets a 503) but not
                            // the thread: the pool keeps its size.
                            Ok(job) => {
                                let run = std::panic::AssertUnwindSafe(|| job(&mut memory));
                                if std::panic::catch_unwind(run).is_err() {
                                    memory = Vec::new();
                                }
                            }
                            Err(_) => break,
                        }
                    }
                })
                .expect("a hashing thread starts");
        }
        Self {
            jobs: std::sync::Mutex::new(jobs),
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(threads)),
            wait,
        }
    }

    /// Runs `work` on a hashing thread once one is free, with that thread's argon2 blocks.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, IdentityError> {
        let slot = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            Ok(Err(closed)) => return Err(unavailable(closed)),
            Err(_) => {
                tracing::warn!("password hashing saturated; answering 503");
                return Err(IdentityError::Unavailable(
                    "too many password checks at once; retry shortly".into(),
                ));
            }
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let _slot = slot;
            let _ = done.send(work(memory));
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(unavailable)?;
        result.await.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::PasswordHasher;

    use super::*;

    #[test]
    fn hashes_are_the_phc_strings_argon2_writes_and_read_both_ways() {
        let argon2 = argon2();
        let mut memory = Vec::new();
        let ours = hash_password(&argon2, "Correct horse 7 battery", &mut memory).unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2::password_hash::PasswordVerifier::verify_password(
                &argon2,
                b"Correct horse 7 battery",
                &parsed
            )
            .is_ok()
        );
        // A hash stored by an earlier version (argon2's own hasher) still verifies.
        let salt = SaltString::encode_b64(&random_bytes::<16>()).unwrap();
        let theirs = argon2
            .hash_password(b"Correct horse 7 battery", &salt)
            .unwrap()
            .to_string();
        assert!(password_matches(
            "Correct horse 7 battery",
            &theirs,
            &mut memory
        ));
        assert!(!password_matches(
            "Correct horse 7 batterY",
            &theirs,
            &mut memory
        ));
        assert!(!password_matches(
            "Correct horse 7 battery",
            "not a hash",
            &mut memory
        ));
        assert_eq!(memory.len(), 19 * 1024, "one allocation, reused");
    }
}
