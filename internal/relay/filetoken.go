package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// EnvFileTokenCommand names a shell command that signs file tokens, for
// uploading attachments: relay-server takes uploads only with a file token,
// which it signs with its private key, never for the server token. The
// command is run as relay-server's `relay sign --auth <private key>` is: a JSON request on
// stdin, the token in the JSON it prints.
const EnvFileTokenCommand = "RELAY_FILE_TOKEN_COMMAND"

// fileTokenTimeout bounds one run of the command.
const fileTokenTimeout = 30 * time.Second

// FileTokensFromEnv returns FileTokenCommand of $RELAY_FILE_TOKEN_COMMAND,
// or nil when it is not set.
func FileTokensFromEnv(getenv func(string) string) FileTokenFunc {
	if c := strings.TrimSpace(getenv(EnvFileTokenCommand)); c != "" {
		return FileTokenCommand(c)
	}
	return nil
}

// FileTokenCommand returns a FileTokenFunc that runs command with /bin/sh
// and writes it
//
//	{"type":"file","docId":"<relay>-<file>","fileHash":"<sha256>","authorization":"full"}
//
// on stdin, as relay-server's `sign` reads it, and takes the "token" field
// of the JSON object it prints. Neither the command (which may hold the
// key) nor what it prints appears in errors.
func FileTokenCommand(command string) FileTokenFunc {
	return func(ctx context.Context, relayID, fileID, hash, _ string, _ int64) (string, error) {
		in, err := json.Marshal(map[string]string{"type": "file", "docId": CompoundID(relayID, fileID), "fileHash": hash, "authorization": "full"})
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(ctx, fileTokenTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
		cmd.Stdin = bytes.NewReader(in)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
			return "", fmt.Errorf("%s failed (%v): %s", EnvFileTokenCommand, err, msg)
		}
		var out struct {
			Token string `json:"token"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out.Token == "" {
			return "", fmt.Errorf("%s printed no JSON object with a token (as relay-server's `relay sign` prints)", EnvFileTokenCommand)
		}
		return out.Token, nil
	}
}
