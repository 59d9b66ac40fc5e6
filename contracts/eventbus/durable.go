package eventbus

// DurableName returns the name of the durable consumer a router of service
// creates for subject: "<service>-<subject>" with '.', '*', '>', path
// separators and white space, which JetStream rejects in names, as '_'.
// For example the consumer of "activity.created" of the service
// "chat.consumer" is "chat_consumer-activity_created". Routers, dead-letter
// tools and tests that look a consumer up all name it through this one
// function.
func DurableName(service, subject string) string {
	return durableName(service + "-" + subject)
}
