mod coalesce;
pub mod cron;
pub mod http;
