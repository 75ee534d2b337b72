package wire

// Snapshots and Home Assistant (docs/PROTOCOL.md, "Snapshots" and "MQTT and
// Home Assistant").
const (
	// KindSnapshot is the kind of cams.<id>.snapshot: a JPEG of the camera
	// now and then (about every 10 s, and when motion starts), for things
	// that show a still picture (Home Assistant's MQTT camera), never the
	// frame stream.
	KindSnapshot = "snapshot"
	// AllSnapshots matches the snapshots of every camera.
	AllSnapshots = SubjectPrefix + ".*." + KindSnapshot

	// HAPrefix is Home Assistant's MQTT discovery prefix (its default,
	// "homeassistant"): discovery configs go on
	// homeassistant.<component>.<node>.<object>.config (MQTT topic
	// homeassistant/<component>/<node>/<object>/config).
	HAPrefix = "homeassistant"
	// HAStatus is where Home Assistant says it (re)started: "online"
	// (its birth message, MQTT topic homeassistant/status).
	HAStatus = HAPrefix + ".status"
	// AllHA matches every discovery config and Home Assistant's status.
	AllHA = HAPrefix + ".>"
)

// SnapshotSubject is the subject camera id's snapshots go on.
func SnapshotSubject(id string) string { return SubjectPrefix + "." + id + "." + KindSnapshot }
