"""Element order of the EWS types the sandbox answers with, taken from types.xsd (Exchange 2016 level).

XML Schema sequences are ordered, so a response that lists a known element out of place fails validation
and can confuse clients. Generated once from ../shared/ews-schema/types.lxml.xsd; regenerate if the
schema is updated.
"""

ITEM: tuple[str, ...] = (
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey", "SortKey",
    "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx", "AppliedHashtags",
    "AppliedHashtagsPreview", "Likes", "LikesPreview", "PendingSocialActivityTagIds",
    "AtAllMention", "CanDelete", "InferenceClassification",
)

MESSAGE: tuple[str, ...] = (
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey", "SortKey",
    "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx", "AppliedHashtags",
    "AppliedHashtagsPreview", "Likes", "LikesPreview", "PendingSocialActivityTagIds",
    "AtAllMention", "CanDelete", "InferenceClassification", "Sender", "ToRecipients",
    "CcRecipients", "BccRecipients", "IsReadReceiptRequested", "IsDeliveryReceiptRequested",
    "ConversationIndex", "ConversationTopic", "From", "InternetMessageId", "IsRead",
    "IsResponseRequested", "References", "ReplyTo", "ReceivedBy", "ReceivedRepresenting",
    "ApprovalRequestData", "VotingInformation", "ReminderMessageData", "SenderSMTPAddress",
    "MailboxGuids", "MailboxGuid",
)

CALENDAR_ITEM: tuple[str, ...] = (
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey", "SortKey",
    "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx", "AppliedHashtags",
    "AppliedHashtagsPreview", "Likes", "LikesPreview", "PendingSocialActivityTagIds",
    "AtAllMention", "CanDelete", "InferenceClassification", "UID", "RecurrenceId", "DateTimeStamp",
    "Start", "End", "OriginalStart", "IsAllDayEvent", "LegacyFreeBusyStatus", "Location", "When",
    "IsMeeting", "IsCancelled", "IsRecurring", "MeetingRequestWasSent", "IsResponseRequested",
    "CalendarItemType", "MyResponseType", "Organizer", "RequiredAttendees", "OptionalAttendees",
    "Resources", "InboxReminders", "ConflictingMeetingCount", "AdjacentMeetingCount",
    "ConflictingMeetings", "AdjacentMeetings", "Duration", "TimeZone", "AppointmentReplyTime",
    "AppointmentSequenceNumber", "AppointmentState", "Recurrence", "FirstOccurrence",
    "LastOccurrence", "ModifiedOccurrences", "DeletedOccurrences", "MeetingTimeZone",
    "StartTimeZone", "EndTimeZone", "ConferenceType", "AllowNewTimeProposal", "IsOnlineMeeting",
    "MeetingWorkspaceUrl", "NetShowUrl", "EnhancedLocation", "StartWallClock", "EndWallClock",
    "StartTimeZoneId", "EndTimeZoneId", "IntendedFreeBusyStatus", "JoinOnlineMeetingUrl",
    "OnlineMeetingSettings", "IsOrganizer", "CalendarActivityData",
)

CONTACT: tuple[str, ...] = (
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey", "SortKey",
    "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx", "AppliedHashtags",
    "AppliedHashtagsPreview", "Likes", "LikesPreview", "PendingSocialActivityTagIds",
    "AtAllMention", "CanDelete", "InferenceClassification", "FileAs", "FileAsMapping",
    "DisplayName", "GivenName", "Initials", "MiddleName", "Nickname", "CompleteName", "CompanyName",
    "EmailAddresses", "AbchEmailAddresses", "PhysicalAddresses", "PhoneNumbers", "AssistantName",
    "Birthday", "BusinessHomePage", "Children", "Companies", "ContactSource", "Department",
    "Generation", "ImAddresses", "JobTitle", "Manager", "Mileage", "OfficeLocation",
    "PostalAddressIndex", "Profession", "SpouseName", "Surname", "WeddingAnniversary", "HasPicture",
    "PhoneticFullName", "PhoneticFirstName", "PhoneticLastName", "Alias", "Notes", "Photo",
    "UserSMIMECertificate", "MSExchangeCertificate", "DirectoryId", "ManagerMailbox",
    "DirectReports", "AccountName", "IsAutoUpdateDisabled", "IsMessengerEnabled", "Comment",
    "ContactShortId", "ContactType", "Gender", "IsHidden", "ObjectId", "PassportId", "IsPrivate",
    "SourceId", "TrustLevel", "CreatedBy", "Urls", "Cid", "SkypeAuthCertificate", "SkypeContext",
    "SkypeId", "SkypeRelationship", "YomiNickname", "XboxLiveTag", "InviteFree",
    "HidePresenceAndProfile", "IsPendingOutbound", "SupportGroupFeeds", "UserTileHash",
    "UnifiedInbox", "Mris", "Wlid", "AbchContactId", "NotInBirthdayCalendar", "ShellContactType",
    "ImMri", "PresenceTrustLevel", "OtherMri", "ProfileLastChanged", "MobileIMEnabled",
    "PartnerNetworkProfilePhotoUrl", "PartnerNetworkThumbnailPhotoUrl", "PersonId",
    "ConversationGuid",
)

# DistributionListType: ItemType's elements, then its own.
DISTRIBUTION_LIST: tuple[str, ...] = (*ITEM, "DisplayName", "FileAs", "ContactSource", "Members")

TASK: tuple[str, ...] = (
    "MimeContent", "ItemId", "ParentFolderId", "ItemClass", "Subject", "Sensitivity", "Body",
    "Attachments", "DateTimeReceived", "Size", "Categories", "Importance", "InReplyTo",
    "IsSubmitted", "IsDraft", "IsFromMe", "IsResend", "IsUnmodified", "InternetMessageHeaders",
    "DateTimeSent", "DateTimeCreated", "ResponseObjects", "ReminderDueBy", "ReminderIsSet",
    "ReminderNextTime", "ReminderMinutesBeforeStart", "DisplayCc", "DisplayTo", "DisplayBcc",
    "HasAttachments", "ExtendedProperty", "Culture", "EffectiveRights", "LastModifiedName",
    "LastModifiedTime", "IsAssociated", "WebClientReadFormQueryString",
    "WebClientEditFormQueryString", "ConversationId", "UniqueBody", "Flag", "StoreEntryId",
    "InstanceKey", "NormalizedBody", "EntityExtractionResult", "PolicyTag", "ArchiveTag",
    "RetentionDate", "Preview", "RightsManagementLicenseData", "PredictedActionReasons",
    "IsClutter", "BlockStatus", "HasBlockedImages", "TextBody", "IconIndex", "SearchKey", "SortKey",
    "Hashtags", "Mentions", "MentionedMe", "MentionsPreview", "MentionsEx", "AppliedHashtags",
    "AppliedHashtagsPreview", "Likes", "LikesPreview", "PendingSocialActivityTagIds",
    "AtAllMention", "CanDelete", "InferenceClassification", "ActualWork", "AssignedTime",
    "BillingInformation", "ChangeCount", "Companies", "CompleteDate", "Contacts", "DelegationState",
    "Delegator", "DueDate", "IsAssignmentEditable", "IsComplete", "IsRecurring", "IsTeamTask",
    "Mileage", "Owner", "PercentComplete", "Recurrence", "StartDate", "Status", "StatusDescription",
    "TotalWork",
)

FOLDER: tuple[str, ...] = (
    "FolderId", "ParentFolderId", "FolderClass", "DisplayName", "TotalCount", "ChildFolderCount",
    "ExtendedProperty", "ManagedFolderInformation", "EffectiveRights", "DistinguishedFolderId",
    "PolicyTag", "ArchiveTag", "ReplicaList", "PermissionSet", "UnreadCount",
)

CALENDAR_FOLDER: tuple[str, ...] = (
    "FolderId", "ParentFolderId", "FolderClass", "DisplayName", "TotalCount", "ChildFolderCount",
    "ExtendedProperty", "ManagedFolderInformation", "EffectiveRights", "DistinguishedFolderId",
    "PolicyTag", "ArchiveTag", "ReplicaList", "SharingEffectiveRights", "PermissionSet",
)

CONTACTS_FOLDER: tuple[str, ...] = (
    "FolderId", "ParentFolderId", "FolderClass", "DisplayName", "TotalCount", "ChildFolderCount",
    "ExtendedProperty", "ManagedFolderInformation", "EffectiveRights", "DistinguishedFolderId",
    "PolicyTag", "ArchiveTag", "ReplicaList", "SharingEffectiveRights", "PermissionSet", "SourceId",
    "AccountName",
)

TASKS_FOLDER: tuple[str, ...] = (
    "FolderId", "ParentFolderId", "FolderClass", "DisplayName", "TotalCount", "ChildFolderCount",
    "ExtendedProperty", "ManagedFolderInformation", "EffectiveRights", "DistinguishedFolderId",
    "PolicyTag", "ArchiveTag", "ReplicaList",
)

