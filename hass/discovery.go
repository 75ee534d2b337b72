package hass

import (
	"strings"

	"camhub/internal/version"
	"camhub/internal/wire"
)

// Discovery is one discovery config and the subject it is published on
// (homeassistant.<component>.camhub_<id>.<object>.config, MQTT topic
// homeassistant/<component>/camhub_<id>/<object>/config).
type Discovery struct {
	Subject string
	Config  map[string]any
}

// topic is the MQTT topic of a NATS subject.
func topic(subject string) string { return strings.ReplaceAll(subject, ".", "/") }

// Configs are camera id's discovery configs: a motion binary_sensor, a
// frame-rate sensor and a camera, grouped as one device.
func Configs(id, codec, agentVersion string) []Discovery {
	node := "camhub_" + id
	model := "camera (" + codec + ")"
	device := map[string]any{"identifiers": []string{node}, "name": id, "manufacturer": "camhub", "model": model}
	if agentVersion != "" {
		device["sw_version"] = agentVersion
	}
	origin := map[string]any{"name": "camhub", "sw_version": version.String()}
	status := topic(wire.StatusSubject(id))
	availability := map[string]any{
		"topic": status,
		// stopped, or a report saying the camera failed: unavailable
		"value_template":        "{{ 'online' if value_json.state in ('streaming', 'starting') else 'offline' }}",
		"payload_available":     "online",
		"payload_not_available": "offline",
	}
	common := func(object string, c map[string]any) Discovery {
		c["unique_id"] = node + "_" + object
		c["object_id"] = node + "_" + object
		c["device"] = device
		c["origin"] = origin
		return Discovery{Subject: wire.HAPrefix + "." + componentOf(c) + "." + node + "." + object + ".config", Config: c}
	}
	return []Discovery{
		common("motion", map[string]any{
			"component":    "binary_sensor",
			"name":         "Motion",
			"device_class": "motion",
			"state_topic":  topic(wire.MotionSubject(id)),
			// cams/<id>/motion is JSON: {"camera":…,"state":"ON",…}
			"value_template":        "{{ value_json.state }}",
			"payload_on":            wire.MotionOn,
			"payload_off":           wire.MotionOff,
			"json_attributes_topic": topic(wire.MotionSubject(id)),
			"availability":          []any{availability},
		}),
		common("fps", map[string]any{
			"component":           "sensor",
			"name":                "Frame rate",
			"state_topic":         status,
			"value_template":      "{{ value_json.fps | round(1) }}",
			"unit_of_measurement": "fps",
			"state_class":         "measurement",
			"icon":                "mdi:speedometer",
			// a camera that stops reporting is offline after 15 s
			"expire_after": 15,
		}),
		common("snapshot", map[string]any{
			"component": "camera",
			"name":      "Snapshot",
			"topic":     topic(wire.SnapshotSubject(id)),
		}),
	}
}

// componentOf takes the component out of c (it is the topic's, not a
// config key).
func componentOf(c map[string]any) string {
	s, _ := c["component"].(string)
	delete(c, "component")
	return s
}
