mod body;
mod clients;
mod coalesce;
pub mod cron;
pub mod http;
