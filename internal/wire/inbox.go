package wire

// InboxPrefix is the prefix of user's reply subjects. Each user has its own,
// so the hub can let a user read replies to itself and not to others.
func InboxPrefix(user string) string { return "_INBOX_" + user }
