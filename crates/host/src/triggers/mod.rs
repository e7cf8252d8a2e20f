pub mod cron;
pub mod http;
