// kotar is a test oracle that writes layer tarballs the way ko
// (github.com/ko-build/ko, pkg/build/gobuild.go) does for linux and windows
// images, using Go's archive/tar, so that a reimplementation can be compared
// with it byte for byte.
//
// Usage:
//
//	kotar binary BINARY APPPATH OUT.tar [PERMITTED INHERITABLE EFFECTIVE]
//	kotar kodata DIR OUT.tar
//	kotar binary-windows BINARY APPPATH OUT.tar
//	kotar kodata-windows DIR OUT.tar
//
// The -windows forms write ko's layers for a windows/* platform: the
// filesystem under Files/ beside an empty Hives/, every file carrying the
// MSWINDOWS.rawsd PAX record, and symlinks in kodata skipped.
//
// With PERMITTED and INHERITABLE (capability bit masks, decimal) and EFFECTIVE (0 or 1),
// the binary carries Linux file capabilities as ko writes them: the kernel's
// vfs_cap_data revision 2 in the PAX record SCHILY.xattr.security.capability.
//
// Environment (kodata only):
//
//	KO_DATA_DATE_EPOCH         integer seconds; ModTime of every entry
//	                           (default: the zero time.Time)
//	KO_DATA_PATH_ALLOWED_ROOT  widens the symlink boundary to this directory
//	                           when it is an ancestor of (or equal to) DIR
//
// Standard library only. Build with:
//
//	GO111MODULE=off go build -o /tmp/kotar kotar.go
package main

import (
	"archive/tar"
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Where ko places kodata inside the image.
const kodataMount = "/var/run/ko"

// All entries written by ko carry this fixed mode.
const fixedMode = 0555

// userOwnerAndGroupSID: ko's security descriptor (owner and group BUILTIN\Users)
// that Windows needs to run a file from a layer.
const userOwnerAndGroupSID = "AQAAgBQAAAAkAAAAAAAAAAAAAAABAgAAAAAABSAAAAAhAgAAAQIAAAAAAAUgAAAAIQIAAA=="

// windows: the layers are for a windows/* platform.
var windows bool

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "kotar:", err)
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage:\n  kotar binary BINARY APPPATH OUT.tar [PERMITTED INHERITABLE EFFECTIVE]\n  kotar kodata DIR OUT.tar\n  kotar binary-windows BINARY APPPATH OUT.tar\n  kotar kodata-windows DIR OUT.tar")
}

func run(args []string) error {
	if len(args) == 0 {
		return usage()
	}
	if strings.HasSuffix(args[0], "-windows") {
		windows = true
		args[0] = strings.TrimSuffix(args[0], "-windows")
		if args[0] == "binary" && len(args) != 4 {
			return usage()
		}
	}
	switch args[0] {
	case "binary":
		if len(args) != 4 && len(args) != 7 {
			return usage()
		}
		var xattr []byte
		if len(args) == 7 {
			var err error
			if xattr, err = capsXattr(args[4], args[5], args[6]); err != nil {
				return err
			}
		}
		return writeOut(args[3], func(tw *tar.Writer) error {
			return binaryLayer(tw, args[1], args[2], xattr)
		})
	case "kodata":
		if len(args) != 3 {
			return usage()
		}
		mtime, err := kodataTime()
		if err != nil {
			return err
		}
		return writeOut(args[2], func(tw *tar.Writer) error {
			return kodataLayer(tw, args[1], mtime)
		})
	default:
		return usage()
	}
}

// writeOut creates out, lets fill write the entries and then closes the tar
// writer (which appends the two zero blocks). On failure the partial output
// file is removed.
func writeOut(out string, fill func(*tar.Writer) error) (err error) {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(out)
		}
	}()
	bw := bufio.NewWriter(f)
	tw := tar.NewWriter(bw)
	if err = fill(tw); err != nil {
		return err
	}
	if err = tw.Close(); err != nil {
		return fmt.Errorf("closing tar writer: %w", err)
	}
	return bw.Flush()
}

// kodataTime mirrors ko's getKoDataCreationTime: KO_DATA_DATE_EPOCH as Unix
// seconds, or the zero time.Time when unset.
func kodataTime() (time.Time, error) {
	s := os.Getenv("KO_DATA_DATE_EPOCH")
	if s == "" {
		return time.Time{}, nil
	}
	secs, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("KO_DATA_DATE_EPOCH must be an integer number of seconds since the epoch: %w", err)
	}
	return time.Unix(secs, 0), nil
}

// capsXattr encodes struct vfs_cap_data (linux/capability.h), revision 2, little-endian:
// magic_etc (VFS_CAP_REVISION_2, and VFS_CAP_FLAGS_EFFECTIVE when effective), then
// {permitted, inheritable} for the low 32 capability bits and for the high 32.
func capsXattr(permitted, inheritable, effective string) ([]byte, error) {
	p, err := strconv.ParseUint(permitted, 10, 64)
	if err != nil {
		return nil, err
	}
	i, err := strconv.ParseUint(inheritable, 10, 64)
	if err != nil {
		return nil, err
	}
	magic := uint32(0x02000000)
	if effective == "1" {
		magic |= 1
	}
	words := []uint32{magic, uint32(p), uint32(i), uint32(p >> 32), uint32(i >> 32)}
	out := make([]byte, 0, 20)
	for _, w := range words {
		out = binary.LittleEndian.AppendUint32(out, w)
	}
	return out, nil
}

// binaryLayer corresponds to ko's tarBinary (linux); xattr, when not nil, is the binary's
// security.capability.
func binaryLayer(tw *tar.Writer, binary, appPath string, xattr []byte) error {
	dirs := []string{"ko-app"}
	if windows {
		dirs = []string{"Hives", "Files", "Files/ko-app"}
		appPath = "Files" + appPath
	}
	for _, d := range dirs {
		dir := &tar.Header{
			Name:     d,
			Typeflag: tar.TypeDir,
			Mode:     fixedMode,
		}
		if err := tw.WriteHeader(dir); err != nil {
			return fmt.Errorf("writing dir %q: %w", dir.Name, err)
		}
	}

	f, err := os.Open(binary)
	if err != nil {
		return fmt.Errorf("opening binary: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	hdr := &tar.Header{
		Name:       appPath,
		Typeflag:   tar.TypeReg,
		Size:       st.Size(),
		Mode:       fixedMode,
		PAXRecords: map[string]string{}, // empty but non-nil, as ko
	}
	if windows {
		hdr.PAXRecords["MSWINDOWS.rawsd"] = userOwnerAndGroupSID
	} else if xattr != nil {
		hdr.PAXRecords["SCHILY.xattr.security.capability"] = string(xattr)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing header %q: %w", appPath, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("copying binary: %w", err)
	}
	return nil
}

// kodataLayer corresponds to ko's tarKoData (linux).
func kodataLayer(tw *tar.Writer, dir string, mtime time.Time) error {
	// ko always hands a filepath.Join-ed (hence clean) path to the walk.
	root := filepath.Clean(dir)

	mount := kodataMount
	dirs := []string{"/var", "/var/run", kodataMount}
	if windows {
		mount = "Files" + kodataMount
		dirs = []string{"Hives", "Files", "Files/var", "Files/var/run", "Files/var/run/ko"}
	}
	for _, d := range dirs {
		if err := dirEntry(tw, d, mtime); err != nil {
			return fmt.Errorf("writing dir %q: %w", d, err)
		}
	}

	// Symlink boundary: the canonical kodata dir, possibly widened. When the
	// directory is missing the raw path is used (nothing will be walked).
	boundary := root
	if _, err := os.Stat(root); err == nil {
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			return fmt.Errorf("resolving %q: %w", root, err)
		}
		abs, err := filepath.Abs(real)
		if err != nil {
			return fmt.Errorf("absolutising %q: %w", real, err)
		}
		boundary = widenBoundary(abs)
	}
	return walk(tw, root, mount, boundary, mtime)
}

// widenBoundary returns KO_DATA_PATH_ALLOWED_ROOT (absolute, symlinks
// resolved when possible) if it contains kodataAbs, else kodataAbs.
func widenBoundary(kodataAbs string) string {
	cand := os.Getenv("KO_DATA_PATH_ALLOWED_ROOT")
	if cand == "" {
		return kodataAbs
	}
	abs, err := filepath.Abs(cand)
	if err != nil {
		return kodataAbs
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	if inside(kodataAbs, abs) {
		return abs
	}
	return kodataAbs
}

// inside reports whether p equals root or lies below it.
func inside(p, root string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, "../")
}

// walk visits root in filepath.Walk order, mapping every host path under root
// to the same relative path under mount. Symlinks are dereferenced; a link to
// a directory gets a directory entry and is walked in turn with the link's
// in-image path as the new mount point.
func walk(tw *tar.Writer, root, mount, boundary string, mtime time.Time) error {
	return filepath.Walk(root, func(p string, fi os.FileInfo, werr error) error {
		if p == root {
			// Includes the case where root is missing or unreadable by Lstat.
			return nil
		}
		if werr != nil {
			return fmt.Errorf("walking %q: %w", root, werr)
		}
		name := path.Join(mount, filepath.ToSlash(p[len(root):]))

		if fi.IsDir() {
			if err := dirEntry(tw, name, mtime); err != nil {
				return fmt.Errorf("writing dir %q: %w", name, err)
			}
			return nil // Walk descends by itself
		}
		if windows && fi.Mode()&os.ModeSymlink != 0 {
			return nil // ko does not follow symlinks for windows
		}

		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("resolving %q: %w", p, err)
		}
		targetAbs, err := filepath.Abs(target)
		if err != nil {
			return fmt.Errorf("absolutising %q: %w", target, err)
		}
		if !inside(targetAbs, boundary) {
			return fmt.Errorf("kodata symlink %q resolves to %q which is outside the allowed root %q", p, target, boundary)
		}

		tfi, err := os.Stat(target)
		if err != nil {
			return fmt.Errorf("stat %q: %w", target, err)
		}
		if tfi.IsDir() {
			if err := dirEntry(tw, name, mtime); err != nil {
				return fmt.Errorf("writing dir %q: %w", name, err)
			}
			return walk(tw, target, name, boundary, mtime)
		}
		return fileEntry(tw, name, target, tfi.Size(), mtime)
	})
}

func dirEntry(tw *tar.Writer, name string, mtime time.Time) error {
	return tw.WriteHeader(&tar.Header{
		Name:     name,
		Typeflag: tar.TypeDir,
		Mode:     fixedMode,
		ModTime:  mtime,
	})
}

func fileEntry(tw *tar.Writer, name, src string, size int64, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("opening %q: %w", src, err)
	}
	defer f.Close()
	hdr := &tar.Header{
		Name:     name,
		Typeflag: tar.TypeReg,
		Size:     size,
		Mode:     fixedMode,
		ModTime:  mtime,
	}
	if windows {
		hdr.PAXRecords = map[string]string{"MSWINDOWS.rawsd": userOwnerAndGroupSID}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing header %q: %w", name, err)
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("copying %q into %q: %w", src, name, err)
	}
	return nil
}
