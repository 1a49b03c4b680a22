//go:build wasip1

package sdk

import "encoding/json"

// Log writes a line to the host's log at info level (bounded and rate
// limited by the host).
func Log(msg string) { logAt(LevelInfo, msg) }

// Logf writes a line at the given level: LevelDebug, LevelInfo, LevelWarn
// or LevelError.
func Logf(level byte, msg string) { logAt(level, msg) }

func logAt(level byte, msg string) {
	_, _ = call(hostLog, []byte{level}, []byte(msg))
}

// Config returns the value of an [env.NAME] variable the user gave at
// install (or its default); an *Error with StatusNotFound when unset.
func Config(name string) (string, error) {
	b, err := call(hostConfigGet, []byte(name), nil)
	return string(b), err
}

// Exists reports whether path exists. Paths are relative to the session's
// workspace or absolute, and must lie under a root the capsule declared
// (capabilities.fs_read or fs_write).
func Exists(path string) (bool, error) {
	b, err := call(hostFSExists, []byte(path), nil)
	return string(b) == "true", err
}

// Mkdir creates a directory and its parents (under an fs_write root).
func Mkdir(path string) error {
	_, err := call(hostFSMkdir, []byte(path), nil)
	return err
}

// ReadDir lists a directory.
func ReadDir(path string) ([]FileInfo, error) {
	b, err := call(hostFSReadDir, []byte(path), nil)
	if err != nil {
		return nil, err
	}
	var out []FileInfo
	return out, json.Unmarshal(b, &out)
}

// Stat describes a file or directory.
func Stat(path string) (FileInfo, error) {
	var fi FileInfo
	b, err := call(hostFSStat, []byte(path), nil)
	if err != nil {
		return fi, err
	}
	return fi, json.Unmarshal(b, &fi)
}

// ReadFile reads a whole file (bounded by the host).
func ReadFile(path string) ([]byte, error) { return call(hostFSRead, []byte(path), nil) }

// WriteFile replaces a file's contents (under an fs_write root).
func WriteFile(path string, data []byte) error {
	_, err := call(hostFSWrite, []byte(path), data)
	return err
}

// Remove deletes a file or an empty directory (under an fs_write root).
func Remove(path string) error {
	_, err := call(hostFSUnlink, []byte(path), nil)
	return err
}

// HTTP performs a request to a host declared in capabilities.net.
func HTTP(req HTTPRequest) (HTTPResponse, error) {
	var resp HTTPResponse
	a, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	b, err := call(hostHTTPRequest, a, nil)
	if err != nil {
		return resp, err
	}
	return resp, json.Unmarshal(b, &resp)
}

// KVGet returns the value of key in the capsule's store; an *Error with
// StatusNotFound when there is none.
func KVGet(key string) ([]byte, error) { return call(hostKVGet, []byte(key), nil) }

// KVSet stores value under key.
func KVSet(key string, value []byte) error {
	_, err := call(hostKVSet, []byte(key), value)
	return err
}

// KVDelete removes key (no error when it is missing).
func KVDelete(key string) error {
	_, err := call(hostKVDelete, []byte(key), nil)
	return err
}

// KVList returns the keys starting with prefix, sorted (bounded by the
// host).
func KVList(prefix string) ([]string, error) {
	b, err := call(hostKVList, []byte(prefix), nil)
	if err != nil {
		return nil, err
	}
	var keys []string
	return keys, json.Unmarshal(b, &keys)
}

// Publish sends payload on a topic declared in capabilities.ipc.
func Publish(topic string, payload []byte) error {
	_, err := call(hostIPCPublish, []byte(topic), payload)
	return err
}

// Subscribe starts queueing the messages of a declared topic for Poll.
func Subscribe(topic string) error {
	_, err := call(hostIPCSubscribe, []byte(topic), nil)
	return err
}

// Poll returns and removes the queued messages of a subscribed topic.
func Poll(topic string) ([]Message, error) {
	b, err := call(hostIPCPoll, []byte(topic), nil)
	if err != nil {
		return nil, err
	}
	var msgs []Message
	return msgs, json.Unmarshal(b, &msgs)
}

// RegisterUplink registers the capsule as the frontend name (declared in
// [[uplink]]).
func RegisterUplink(name string) error {
	_, err := call(hostUplinkRegister, []byte(name), nil)
	return err
}

// SendToUser sends text to the user of the current session through its
// frontend.
func SendToUser(text string) error {
	_, err := call(hostUplinkSend, []byte(text), nil)
	return err
}

// CronSchedule schedules job name on a cron expression; the handler
// registered with RegisterCron(name) runs with an empty action.
func CronSchedule(name, schedule string) error {
	_, err := call(hostCronSchedule, []byte(name), []byte(schedule))
	return err
}

// CronCancel cancels a job scheduled with CronSchedule.
func CronCancel(name string) error {
	_, err := call(hostCronCancel, []byte(name), nil)
	return err
}

// Elicit asks the session's user a question and returns the answer.
func Elicit(req ElicitRequest) (string, error) {
	a, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	b, err := call(hostElicit, a, nil)
	return string(b), err
}

// DeferredResult returns the outcome of a host call that was deferred
// (see DeferredID) once a human answered its approval: the call's payload,
// or its error (status denied for a refused approval). While the approval
// waits the error has status deferred; retry later. A final outcome is
// delivered once; afterwards the id is not found.
func DeferredResult(id string) ([]byte, error) { return call(hostDeferredResult, []byte(id), nil) }
