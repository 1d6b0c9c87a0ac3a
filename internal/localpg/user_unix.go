package localpg

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// asPostgresUser runs cmd as the postgres system user when we are root,
// because initdb and the server refuse to run as root.
func asPostgresUser(cmd *exec.Cmd, dir string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return cmd
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return cmd
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The cluster folder must belong to that user.
	_ = filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err == nil {
			_ = os.Lchown(p, uid, gid)
		}
		return nil
	})
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	return cmd
}
