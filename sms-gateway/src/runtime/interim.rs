//! A stand-in command handler so that the `sms-gateway` binary answers before the real
//! command set (`commands::handle_mo`) is wired in: every command gets the short help.
// replaced by commands::handle_mo at merge
use app::Hall;

use super::CommandHandler;

/// The short help every message gets from [`HelpOnly`].
pub const HELP_TEXT: &str =
    "中国移动10086短信营业厅:发送CXYE查余额,CXZD查账单,CXTC查套餐,CXLL查流量,CXJF查积分,BZ查看全部指令。";

/// Replies to every message with [`HELP_TEXT`].
// replaced by commands::handle_mo at merge
#[derive(Debug, Default, Clone, Copy)]
pub struct HelpOnly;

#[async_trait::async_trait]
impl CommandHandler for HelpOnly {
    async fn handle(&self, _hall: &Hall, _source: &str, _text: &str) -> Option<String> {
        Some(HELP_TEXT.to_owned())
    }
}
