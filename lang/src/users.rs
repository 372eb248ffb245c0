//! User accounts: `login` checks them; `changePwd`, `createUser`, `resetPwd` and `deleteUser`
//! change them. A node starts with DolphinDB's default account, `admin` / `123456`.
//!
//! Passwords are never stored: each account keeps a random 16-byte salt and
//! SHA-256 iterated [`HASH_ROUNDS`] times over salt and password. The account file
//! (`<dfsMetaDir>/users`, one `name salt-hex hash-hex admin-flag` line per account) is replaced
//! atomically, so a crash leaves the old or the new set of accounts, never a mix.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::eval::EvalError;

/// Hash iterations: a few milliseconds per login, enough to slow down guessing a stolen file.
pub const HASH_ROUNDS: u32 = 4096;
/// Most accounts a node keeps.
pub const ACCOUNTS_MAX: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    salt: [u8; 16],
    hash: [u8; 32],
    admin: bool,
}

fn digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut h: [u8; 32] = Sha256::new()
        .chain_update(salt)
        .chain_update(password.as_bytes())
        .finalize()
        .into();
    for _ in 1..HASH_ROUNDS {
        h = Sha256::new()
            .chain_update(salt)
            .chain_update(h)
            .finalize()
            .into();
    }
    h
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Account {
    fn new(password: &str, admin: bool) -> Account {
        let mut salt = [0u8; 16];
        rt::rand::Rng::with_seed(rt::rand::seed()).fill(&mut salt);
        Account {
            hash: digest(&salt, password),
            salt,
            admin,
        }
    }

    fn verify(&self, password: &str) -> bool {
        // Compare without an early exit, so timing says nothing about the hash.
        digest(&self.salt, password)
            .iter()
            .zip(&self.hash)
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
    }
}

/// The node's accounts.
#[derive(Debug)]
pub struct Users {
    path: Option<PathBuf>,
    accounts: RefCell<BTreeMap<String, Account>>,
}

thread_local! {
    /// The in-memory default accounts sessions share when their node gave them none (hashing
    /// the default password once per thread, not once per session).
    static DEFAULT: std::rc::Rc<Users> = std::rc::Rc::new(Users::in_memory());
}

/// The shared in-memory default accounts (`admin` / `123456`).
pub fn default_users() -> std::rc::Rc<Users> {
    DEFAULT.with(|u| u.clone())
}

impl Users {
    /// Accounts that live only in memory (tests, nodes without a metadata directory).
    pub fn in_memory() -> Users {
        // The default password is public, so its salt need not be random; drawing one would
        // consume the simulator's seeded randomness at a point that depends on which thread
        // built the defaults first, and break same-seed-same-trace.
        let salt = *b"porpoise-default";
        let admin = Account {
            hash: digest(&salt, "123456"),
            salt,
            admin: true,
        };
        let mut accounts = BTreeMap::new();
        accounts.insert("admin".to_string(), admin);
        Users {
            path: None,
            accounts: RefCell::new(accounts),
        }
    }

    /// No accounts at all: nobody can log in (used when the account file cannot be read, so
    /// a damaged file never falls back to the default password).
    pub fn locked() -> Users {
        Users {
            path: None,
            accounts: RefCell::new(BTreeMap::new()),
        }
    }

    /// Opens the account file at `path` (the default account when it does not exist yet).
    pub fn open(path: PathBuf) -> Result<Users, EvalError> {
        let mut users = Users::in_memory();
        users.path = Some(path.clone());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(users),
            Err(e) => return Err(EvalError::msg(format!("{}: {e}", path.display()))),
        };
        let mut accounts = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let parsed = match f.as_slice() {
                [name, salt, hash, admin] => {
                    unhex::<16>(salt)
                        .zip(unhex::<32>(hash))
                        .map(|(salt, hash)| {
                            (
                                name.to_string(),
                                Account {
                                    salt,
                                    hash,
                                    admin: *admin == "1",
                                },
                            )
                        })
                }
                _ => None,
            };
            let (name, account) = parsed.ok_or_else(|| {
                EvalError::msg(format!(
                    "{}:{}: not an account line (name salt hash admin)",
                    path.display(),
                    n + 1
                ))
            })?;
            accounts.insert(name, account);
        }
        users.accounts = RefCell::new(accounts);
        Ok(users)
    }

    async fn save(&self) -> Result<(), EvalError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let text: String = self
            .accounts
            .borrow()
            .iter()
            .map(|(n, a)| format!("{n} {} {} {}\n", hex(&a.salt), hex(&a.hash), a.admin as u8))
            .collect();
        // Plain std I/O: the file is tiny and changes rarely; rename makes it atomic.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| EvalError::msg(format!("{}: {e}", path.display())))
    }

    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.accounts
            .borrow()
            .get(user)
            .is_some_and(|a| a.verify(password))
    }

    pub fn is_admin(&self, user: &str) -> bool {
        self.accounts.borrow().get(user).is_some_and(|a| a.admin)
    }

    pub async fn set_password(&self, user: &str, password: &str) -> Result<(), EvalError> {
        let admin = {
            let accounts = self.accounts.borrow();
            let a = accounts
                .get(user)
                .ok_or_else(|| EvalError::msg(format!("The user {user} does not exist")))?;
            a.admin
        };
        check_password(password)?;
        self.accounts
            .borrow_mut()
            .insert(user.to_string(), Account::new(password, admin));
        self.save().await
    }

    pub async fn create(&self, user: &str, password: &str) -> Result<(), EvalError> {
        if user.is_empty()
            || user.len() > 30
            || !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(EvalError::msg(format!(
                "The user name '{user}' must be 1 to 30 letters, digits or underscores"
            )));
        }
        check_password(password)?;
        {
            let mut accounts = self.accounts.borrow_mut();
            if accounts.contains_key(user) {
                return Err(EvalError::msg(format!("The user {user} already exists")));
            }
            if accounts.len() >= ACCOUNTS_MAX {
                return Err(EvalError::msg(format!("at most {ACCOUNTS_MAX} users")));
            }
            accounts.insert(user.to_string(), Account::new(password, false));
        }
        self.save().await
    }

    pub async fn delete(&self, user: &str) -> Result<(), EvalError> {
        if user == "admin" {
            return Err(EvalError::msg("The user admin cannot be deleted"));
        }
        if self.accounts.borrow_mut().remove(user).is_none() {
            return Err(EvalError::msg(format!("The user {user} does not exist")));
        }
        self.save().await
    }
}

fn check_password(p: &str) -> Result<(), EvalError> {
    if p.is_empty() || p.len() > 128 || p.chars().any(char::is_whitespace) {
        return Err(EvalError::msg(
            "A password must be 1 to 128 characters without spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_persist_hashed_and_verify() {
        let dir = std::env::temp_dir().join(format!("porpoise-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("users");
        let _ = std::fs::remove_file(&path);
        let u = Users::open(path.clone()).unwrap();
        assert!(u.verify("admin", "123456"));
        futures_lite::future::block_on(u.set_password("admin", "s3cret")).unwrap();
        futures_lite::future::block_on(u.create("alice", "pw")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cret") && !text.contains(" pw "), "{text}");
        let again = Users::open(path.clone()).unwrap();
        assert!(again.verify("admin", "s3cret"));
        assert!(!again.verify("admin", "123456"));
        assert!(again.verify("alice", "pw") && !again.is_admin("alice"));
        assert!(futures_lite::future::block_on(again.delete("admin")).is_err());
        std::fs::write(&path, "admin zz\n").unwrap();
        let e = Users::open(path).unwrap_err();
        assert!(e.to_string().contains("users:1"), "{e}");
    }
}
