//! The deploys the rehearsal makes: the defaults, a webhook, every optional parameter set, and three deploys
//! CloudFormation must refuse (which moto would accept, since it ignores `Rules` and parameter constraints).

/// One deploy to rehearse.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub what: &'static str,
    /// `--parameter-overrides`, as an instructor would give them.
    pub parameters: Vec<(String, String)>,
    pub expect: Expect,
    /// The room the journey's questions are asked in.
    pub room: &'static str,
}

/// How CloudFormation must answer a deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Create the stack.
    Deploy,
    /// Refuse it, naming this (a rule's or a parameter's name) in the refusal.
    Refused(&'static str),
}

impl Scenario {
    /// The stack this scenario deploys.
    pub fn stack_name(&self) -> String {
        format!("qrelay-{}", self.name)
    }
}

/// The scenarios, with the chat fake's URL and the ARN of a secret the instructor made before deploying.
pub fn all(chat_url: &str, existing_secret_arn: &str) -> Vec<Scenario> {
    let pairs = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    // What an instructor who read only the first half of the ARN would paste: no six-character suffix.
    let without_suffix = existing_secret_arn
        .rsplit_once('-')
        .map_or(existing_secret_arn, |(head, _)| head);
    vec![
        Scenario {
            name: "defaults",
            what: "every parameter at its default but ChatUrl (Rocket.Chat, one room)",
            parameters: pairs(&[("ChatUrl", chat_url)]),
            expect: Expect::Deploy,
            room: "general",
        },
        Scenario {
            name: "webhook",
            what: "ChatKind webhook, no ChatUrl (the webhook's URL lives in the secret)",
            parameters: pairs(&[("ChatKind", "webhook")]),
            expect: Expect::Deploy,
            room: "general",
        },
        Scenario {
            name: "all-optional",
            what: "every optional parameter set, the chat secret the instructor's own",
            parameters: pairs(&[
                ("Rooms", "general,rust-101=rust-course"),
                ("ChatKind", "rocketchat"),
                ("ChatUrl", chat_url),
                ("TimeZone", "Europe/Berlin"),
                ("MaxQuestionChars", "1800"),
                ("MaxNicknameChars", "100"),
                ("ThrottleRateLimit", "5"),
                ("ThrottleBurstLimit", "10"),
                ("QuestionThrottleRateLimit", "2"),
                ("QuestionThrottleBurstLimit", "5"),
                ("AlarmEmail", "instructor@example.com"),
                ("ChatInstanceId", "i-0123456789abcdef0"),
                ("ExistingChatSecretArn", existing_secret_arn),
                ("OldestMessageAlarmSeconds", "600"),
                ("LogRetentionDays", "30"),
                ("InstructorEmail", "sensei@example.com"),
                ("FloodThreshold", "30"),
                ("HeldQuestionDays", "7"),
                ("ControlTablePointInTimeRecovery", "true"),
                ("RetentionDays", "60"),
                ("DigestEmail", "sensei@example.com"),
                ("DigestIdentityExists", "false"),
                ("DigestSchedule", "cron(30 17 ? * MON-FRI *)"),
                ("DigestScheduleTimezone", "Europe/Berlin"),
                ("InstructorLanguage", "en"),
                ("AlarmPhone", "+819012345678"),
                ("EscalationPhones", "+819011110001,+819011110002"),
                ("EscalateAfterMinutes", "5"),
                ("TwilioFromNumber", "+15005550006"),
            ]),
            expect: Expect::Deploy,
            room: "rust-101",
        },
        Scenario {
            name: "refused-no-chat-url",
            what: "ChatKind rocketchat without ChatUrl: CloudFormation's Rules refuse it",
            parameters: Vec::new(),
            expect: Expect::Refused("RocketChatNeedsItsUrl"),
            room: "general",
        },
        Scenario {
            name: "refused-mattermost-without-url",
            what: "ChatKind mattermost without ChatUrl: CloudFormation's Rules refuse it",
            parameters: pairs(&[("ChatKind", "mattermost")]),
            expect: Expect::Refused("MattermostNeedsItsUrl"),
            room: "general",
        },
        Scenario {
            name: "refused-plain-http-chat-url",
            what: "ChatUrl over plain HTTP: the bot's token would travel in cleartext",
            parameters: pairs(&[("ChatUrl", "http://chat.example.com")]),
            expect: Expect::Refused("ChatUrl"),
            room: "general",
        },
        Scenario {
            name: "refused-escalation-without-twilio-number",
            what: "EscalationPhones without TwilioFromNumber: nobody could be called",
            parameters: pairs(&[("ChatUrl", chat_url), ("EscalationPhones", "+819011110001")]),
            expect: Expect::Refused("EscalationNeedsTwilioNumber"),
            room: "general",
        },
        Scenario {
            name: "refused-digest-without-archive",
            what: "DigestEmail with RetentionDays 0: no question would be kept to mail",
            parameters: pairs(&[
                ("ChatUrl", chat_url),
                ("DigestEmail", "sensei@example.com"),
                ("RetentionDays", "0"),
            ]),
            expect: Expect::Refused("DigestNeedsTheArchive"),
            room: "general",
        },
        Scenario {
            name: "refused-phone-not-e164",
            what: "AlarmPhone written as dialled at home, not in E.164: SNS could not text it",
            parameters: pairs(&[("ChatUrl", chat_url), ("AlarmPhone", "090-1234-5678")]),
            expect: Expect::Refused("AlarmPhone"),
            room: "general",
        },
        Scenario {
            name: "refused-digest-schedule",
            what: "a DigestSchedule that is not an EventBridge Scheduler expression",
            parameters: pairs(&[
                ("ChatUrl", chat_url),
                ("DigestEmail", "sensei@example.com"),
                ("DigestSchedule", "every weekday at 6pm"),
            ]),
            expect: Expect::Refused("DigestSchedule"),
            room: "general",
        },
        Scenario {
            name: "refused-secret-without-suffix",
            what: "ExistingChatSecretArn without its six-character suffix: IAM would refuse the consumer its secret",
            parameters: pairs(&[("ChatUrl", chat_url), ("ExistingChatSecretArn", without_suffix)]),
            expect: Expect::Refused("ExistingChatSecretArn"),
            room: "general",
        },
    ]
}
