//! CPU time of processes from /proc, to say where a load's time went (the host, Postgres, the
//! load generator) rather than only how long requests took.

/// /proc reports times in USER_HZ ticks, which Linux fixes at 100 for user space.
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system seconds of one process so far, if it still exists.
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_seconds(&stat)
}

/// User + system seconds of every live process named `postgres` (the server and its
/// backends; a backend that exits between two readings takes its time with it).
pub fn postgres_seconds() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| command(stat) == Some("postgres"))
        .filter_map(|stat| stat_seconds(&stat))
        .sum()
}

/// CPU seconds spent by the host, Postgres and this process between two readings.
#[derive(Clone, Copy, Debug, Default)]
pub struct Split {
    pub host: f64,
    pub postgres: f64,
    pub client: f64,
}

impl Split {
    pub fn now(host_pid: u32) -> Self {
        Self {
            host: process_seconds(host_pid).unwrap_or(0.0),
            postgres: postgres_seconds(),
            client: process_seconds(std::process::id()).unwrap_or(0.0),
        }
    }

    pub fn since(self, earlier: Split) -> Split {
        Split {
            host: self.host - earlier.host,
            postgres: self.postgres - earlier.postgres,
            client: self.client - earlier.client,
        }
    }
}

/// The command name: the text between the first '(' and the last ')'.
fn command(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// utime + stime (fields 14 and 15, counted after the command name, which may hold spaces).
fn stat_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // `rest` starts at field 3 (state).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_times_after_a_command_with_spaces() {
        let stat = "42 (post gres) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(command(stat), Some("post gres"));
        assert_eq!(stat_seconds(stat), Some(3.0));
        let own = process_seconds(std::process::id()).unwrap();
        assert!(own >= 0.0);
    }
}
