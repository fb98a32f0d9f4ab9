// Package sshdtest runs a real OpenSSH server for tests: a private sshd on
// 127.0.0.1 with its own host key and one authorized client key, and the
// git helpers to create and inspect the repositories it serves. It is
// imported by tests only.
//
// Without sshd the test is skipped, except under CI=true, where that is a
// failure (testreq.SSHD): CI installs openssh-server (.ci/run).
//
// As root, sshd logs the client in as a dedicated account, TestUser, with a
// plain /bin/sh: root's bash and its startup files make every SSH
// connection twice as slow. The account is created on first use
// (useradd), and the repositories it serves are owned by it; Git runs git as
// the owner of the directory it works in.
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/relay-git-sync/relay-git-sync/internal/testreq"
)

// TestUser is the account tests log in as when they run as root.
const TestUser = "relay-git-sync-test"

// User is who owns the served repositories.
type User struct {
	Name     string
	UID, GID uint32
}

var (
	userOnce sync.Once
	theUser  User
	userErr  error
)

// SSHUser returns the account sshd logs the tests in as: TestUser (created
// if needed) as root, else the current user.
func SSHUser(t testing.TB) User {
	t.Helper()
	userOnce.Do(func() {
		if os.Geteuid() != 0 {
			u, err := user.Current()
			if err != nil {
				userErr = err
				return
			}
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			theUser = User{Name: u.Username, UID: uint32(uid), GID: uint32(gid)}
			return
		}
		if _, err := user.Lookup(TestUser); err != nil {
			out, err := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh", "--user-group", TestUser).CombinedOutput()
			if _, lerr := user.Lookup(TestUser); err != nil && lerr != nil {
				// (Another test process may have created it meanwhile.)
				userErr = fmt.Errorf("useradd %s: %v: %s", TestUser, err, out)
				return
			}
		}
		// A locked password ("!") bars key logins when sshd does not use
		// PAM; "*" means "no password".
		if out, err := exec.Command("usermod", "-p", "*", TestUser).CombinedOutput(); err != nil {
			userErr = fmt.Errorf("usermod %s: %v: %s", TestUser, err, out)
			return
		}
		u, err := user.Lookup(TestUser)
		if err != nil {
			userErr = err
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		theUser = User{Name: u.Username, UID: uint32(uid), GID: uint32(gid)}
	})
	if userErr != nil {
		t.Fatalf("sshdtest: test user: %v", userErr)
	}
	return theUser
}

// Server is a running sshd that the test started.
type Server struct {
	t    testing.TB
	bin  string
	Dir  string // config, keys, log
	Port int
	User User
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
	// ClientPEM is the authorized client's private key, as SSH_PRIVATE_KEY
	// would hold it (OpenSSH format); ClientKeyFile holds it too (0600).
	ClientPEM     string
	ClientKeyFile string

	cmd   *exec.Cmd
	logMu sync.Mutex
	log   bytes.Buffer
}

// Start starts sshd on a free port of 127.0.0.1 and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := testreq.SSHD(t)
	u := SSHUser(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostPEM := MarshalKey(t, hostPriv)
	clientPEM := MarshalKey(t, clientPriv)
	must(t, os.WriteFile(filepath.Join(dir, "host_key"), []byte(hostPEM), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "client_key"), []byte(clientPEM), 0o600))
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	clientSigner, _ := ssh.NewSignerFromKey(clientPriv)
	must(t, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o644))
	if os.Geteuid() == 0 {
		os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	}
	s := &Server{t: t, bin: bin, Dir: dir, Port: freePort(t), User: u, HostKey: hostSigner.PublicKey(),
		ClientPEM: clientPEM, ClientKeyFile: filepath.Join(dir, "client_key")}
	config := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
AuthorizedKeysFile %s
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin yes
AllowUsers %s
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100
LogLevel INFO
`, s.Port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), u.Name)
	must(t, os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(config), 0o644))
	s.start()
	t.Cleanup(s.Stop)
	return s
}

// MarshalKey returns a private key in OpenSSH PEM form.
func MarshalKey(t testing.TB, k ed25519.PrivateKey) string {
	blk, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(blk))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (s *Server) start() {
	s.t.Helper()
	cmd := exec.Command(s.bin, "-D", "-e", "-f", filepath.Join(s.Dir, "sshd_config"))
	cmd.Stdout = lockedWriter{&s.logMu, &s.log}
	cmd.Stderr = lockedWriter{&s.logMu, &s.log}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("sshdtest: starting sshd: %v", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("sshdtest: sshd did not start: %v\n%s", err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the sshd (the process this Server started, and only it).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Restart starts sshd again on the same port (after Stop).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Log returns what sshd logged.
func (s *Server) Log() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// URL returns the ssh:// URL of an absolute repository path on the server.
func (s *Server) URL(path string) string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", s.User.Name, s.Port, path)
}

// KnownHostsLine is the server's known_hosts line.
func (s *Server) KnownHostsLine() string {
	return fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey))))
}

// WriteKnownHosts writes a known_hosts file holding the server's key.
func (s *Server) WriteKnownHosts(t testing.TB) string {
	p := filepath.Join(t.TempDir(), "known_hosts")
	must(t, os.WriteFile(p, []byte(s.KnownHostsLine()+"\n"), 0o644))
	return p
}

// GitSSHCommand is GIT_SSH_COMMAND for the git CLI (run as the current
// user) to reach the server with the client key.
func (s *Server) GitSSHCommand(knownHosts string) string {
	return fmt.Sprintf("ssh -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes",
		s.ClientKeyFile, knownHosts)
}

// ---- repositories

// Dir returns a new temporary directory owned by u (the zero User: the
// current user) that u can reach.
func Dir(t testing.TB, u User) string {
	t.Helper()
	d := t.TempDir()
	os.Chmod(d, 0o755)
	os.Chmod(filepath.Dir(d), 0o755) // the test's own temp root
	if u != (User{}) && os.Geteuid() == 0 {
		must(t, os.Chown(d, int(u.UID), int(u.GID)))
	}
	return d
}

// BareRepo creates an empty bare repository (initial branch main) owned by
// u (the zero User: the current user).
func BareRepo(t testing.TB, u User) string {
	t.Helper()
	dir := filepath.Join(Dir(t, u), "remote.git")
	Git(t, filepath.Dir(dir), nil, "init", "-q", "--bare", "-b", "main", dir)
	return dir
}

// Git runs git in dir — as dir's owner when we are root, since git refuses
// other users' repositories and what it creates must stay the owner's — with
// a fixed identity and no user or system config, plus env; it fails the
// test on error and returns the trimmed output.
func Git(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := TryGit(dir, env, args...)
	if err != nil {
		t.Fatalf("git %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return out
}

// TryGit is Git returning the error.
func TryGit(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"HOME="+os.TempDir(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Other Person", "GIT_AUTHOR_EMAIL=other@example.com",
		"GIT_COMMITTER_NAME=Other Person", "GIT_COMMITTER_EMAIL=other@example.com",
		"GIT_TERMINAL_PROMPT=0")
	cmd.Env = append(cmd.Env, env...)
	if owner, ok := OwnerOf(dir); ok {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: owner.UID, Gid: owner.GID}}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// OwnerOf returns the owner of path when we are root and it is someone
// else (whose identity git commands there must take).
func OwnerOf(path string) (User, bool) {
	if os.Geteuid() != 0 {
		return User{}, false
	}
	fi, err := os.Stat(path)
	if err != nil {
		return User{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return User{}, false
	}
	return User{UID: st.Uid, GID: st.Gid}, true
}
