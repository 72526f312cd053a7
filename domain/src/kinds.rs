//! Classifications of a case: request category, case kind (五件制), urgency and channel.

use serde::{Deserialize, Serialize};

/// 诉求类别 — what the citizen asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// 咨询
    Inquiry,
    /// 求助
    HelpRequest,
    /// 投诉
    Complaint,
    /// 举报
    Report,
    /// 建议
    Proposal,
    /// 表扬
    Praise,
}

impl Category {
    /// The Chinese label shown on screen.
    pub fn label(self) -> &'static str {
        match self {
            Category::Inquiry => "咨询",
            Category::HelpRequest => "求助",
            Category::Complaint => "投诉",
            Category::Report => "举报",
            Category::Proposal => "建议",
            Category::Praise => "表扬",
        }
    }
}

/// 件别 (五件制) — how the case is to be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// 即办件: answered on the call.
    Immediate,
    /// 上报件: escalated to a handling unit.
    Escalated,
    /// 承诺件: the unit promised a date.
    Promised,
    /// 建议件
    Suggestion,
    /// 补办件: material missing, to be completed.
    Supplementary,
}

impl Kind {
    /// The Chinese label shown on screen.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Immediate => "即办件",
            Kind::Escalated => "上报件",
            Kind::Promised => "承诺件",
            Kind::Suggestion => "建议件",
            Kind::Supplementary => "补办件",
        }
    }
}

/// 紧急程度.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// 一般
    Normal,
    /// 紧急
    Urgent,
    /// 特急
    Critical,
}

impl Urgency {
    /// The Chinese label shown on screen.
    pub fn label(self) -> &'static str {
        match self {
            Urgency::Normal => "一般",
            Urgency::Urgent => "紧急",
            Urgency::Critical => "特急",
        }
    }
}

/// 来源渠道 — how the request reached the centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 电话
    Phone,
    /// 网站
    Web,
    /// 微信/小程序
    Wechat,
    /// 短信
    Sms,
    /// 邮件
    Email,
    /// 来信来访
    Letter,
}
