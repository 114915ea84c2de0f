package vhd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"reflect"
	"strconv"
	"strings"
)

// Errors of the chain import and staging code. They come wrapped in a
// *StagingError (with errors.Is able to reach them); a refused file name
// matches ErrUnsafeName instead, or as well.
var (
	// ErrStagingName: a staging file's name is not a sequence number
	// ("0.vhd", "1.vhd", ...), a legacy name, or is ambiguous.
	ErrStagingName = errors.New("vhd: bad staging file name")
	// ErrSequenceGap: the sequence numbers of a staging set do not run
	// from 0 without a gap (os-xenapi's "Corrupt image. Expected seq
	// number").
	ErrSequenceGap = errors.New("vhd: gap in the staging sequence")
	// ErrEmptyStaging: a staging directory holds no VHD.
	ErrEmptyStaging = errors.New("vhd: no VHD in the staging directory")
	// ErrHiddenLeaf: the leaf of a chain is hidden; an SR scan would treat
	// it as garbage.
	ErrHiddenLeaf = errors.New("vhd: leaf is hidden")
	// ErrChainIncomplete: the staged chain's base is itself a differencing
	// disk, or a staged chain resolves to files outside the set.
	ErrChainIncomplete = errors.New("vhd: chain incomplete")
	// ErrHardLinked: a staged file has other hard links (it is, say, still
	// linked into the SR Stage linked it from); relinking it in place would
	// rewrite its twin too, so Import refuses it. Copy the set instead, as
	// rsync does between hosts, or import on the destination host.
	ErrHardLinked = errors.New("vhd: staged file has other hard links")
	// ErrLinkCountUnknown: the file system does not report a staged
	// file's hard link count (an SFTP server whose attributes carry none,
	// say), so Import cannot rule out that the file is still linked into
	// the SR it was staged from, and refuses it rather than guess.
	ErrLinkCountUnknown = errors.New("vhd: staged file's hard link count is unknown")
	// ErrExists: a file a move or link would create already exists; it is
	// never replaced.
	ErrExists = errors.New("vhd: target file exists")
)

// StagingError reports a failed Import, Stage or Scan step: which
// directory, which file, which step, and the cause (a sentinel of this
// package, a *FormatError, a *ParentError, a *NameError or an I/O error).
type StagingError struct {
	// Op is "import", "stage" or "scan".
	Op string
	// Step is the step that failed: "list", "sequence", "inspect",
	// "rename", "relink", "validate", "move", "link".
	Step string
	// Dir is the directory being read (the staging directory for Import,
	// the SR directory for Stage and Scan).
	Dir string
	// Name is the file concerned, when one is.
	Name string
	// Err is the cause.
	Err error
}

// Error implements error. The directory and the file are named once: not
// again when the cause already names them.
func (e *StagingError) Error() string {
	cause := fmt.Sprint(e.Err)
	msg := "vhd: " + e.Op
	if !strings.Contains(cause, e.Dir) {
		msg += " " + e.Dir
	}
	msg += ": " + e.Step
	if e.Name != "" && !strings.Contains(cause, e.Name) {
		msg += ": " + e.Name
	}
	return msg + ": " + cause
}

// Unwrap returns the cause.
func (e *StagingError) Unwrap() error { return e.Err }

// SwapName is the staging name older Nova gave a swap disk; Import leaves
// such a file where it is.
const SwapName = "swap.vhd"

// legacyNames are the staging names of Nova's first image layout, in
// sequence order: leaf, its parent, base.
var legacyNames = [...]string{"snap.vhd", "image.vhd", "base.vhd"}

// ImportOptions tune Import. The zero value (or nil) follows os-xenapi.
type ImportOptions struct {
	// Rand is the randomness for the new VDI UUIDs; nil means crypto/rand.
	Rand io.Reader
	// MaxDepth is the largest chain accepted; 0 means DefaultMaxDepth.
	MaxDepth int
	// TrustOrder relinks the files by their sequence numbers alone, as
	// os-xenapi does. By default each staged child must already record
	// the next file's UUID as its parent's, so a misnumbered set cannot
	// be stitched into a chain that reads wrong data.
	TrustOrder bool
	// Check tunes the validation of each file (its clock, for one).
	Check *CheckOptions
	// Logger receives progress at debug level; nil discards it.
	Logger *slog.Logger
}

// ImportResult is what Import produced.
type ImportResult struct {
	// Leaf is the new UUID of the chain's leaf (the root VDI Nova boots).
	Leaf UUID
	// Chain lists the new UUIDs, leaf first, base last.
	Chain []UUID
	// Files lists the files now in the SR, leaf first, base last.
	Files []string
}

// Import moves a staged VHD chain into an SR the way os-xenapi's
// import_vhds does, over fsys (a local directory or a host reached over
// SFTP). stagingDir holds 0.vhd (the leaf), 1.vhd (its parent), ... n-1.vhd
// (the base); the legacy names snap.vhd, image.vhd and base.vhd stand for the
// next numbers in that order, and a lone VHD of any name is the leaf.
// swap.vhd and names not ending in ".vhd" are left alone.
//
// The steps: list and number the files (refusing a gap, a name that is not
// a sequence number, a symbolic link or directory, a number past
// MaxDepth); open and check each file (refusing one with other hard links
// (ErrHardLinked) or whose link count the FS does not report
// (ErrLinkCountUnknown), a corrupt one, a hidden leaf, a non-differencing
// child, a differencing base and, unless TrustOrder, a child whose
// recorded parent UUID is not the next file's);
// rename each k.vhd to <new-uuid>.vhd in the staging directory; relink from
// the base up with SetParent, so every parent locator names its new file;
// Check every file and open the whole chain through its locators; then move
// the files into srDir, base first, leaf last, never replacing a file. Until
// the move nothing in srDir is touched; a failed move is rolled back. After
// a failure past the renaming step the staged files get their sequence
// names back, so the set can be looked at and imported again: their parent
// UUIDs are unchanged, but once relinked their parent locators name the
// <uuid>.vhd files they were renamed to, which a new Import relinks again.
// stagingDir and srDir must be different directories. The staging directory
// itself is not removed.
func Import(ctx context.Context, fsys FS, stagingDir, srDir string, opts *ImportOptions) (ImportResult, error) {
	var o ImportOptions
	if opts != nil {
		o = *opts
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	log := o.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	fail := func(step, name string, err error) (ImportResult, error) {
		return ImportResult{}, &StagingError{Op: "import", Step: step, Dir: stagingDir, Name: name, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail("list", "", err)
	}

	seq, err := sequence(fsys, stagingDir, o.MaxDepth)
	if err != nil {
		return fail("sequence", "", err)
	}
	n := len(seq)
	log.Debug("vhd import: staged chain", "dir", stagingDir, "files", seq)

	// Inspect every file before anything is renamed.
	if err := inspect(fsys, stagingDir, seq, &o); err != nil {
		return ImportResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return fail("inspect", "", err)
	}
	if fi, err := fsys.Stat(srDir); err != nil {
		return ImportResult{}, &StagingError{Op: "import", Step: "inspect", Dir: srDir, Err: err}
	} else if !fi.IsDir() {
		return ImportResult{}, &StagingError{Op: "import", Step: "inspect", Dir: srDir,
			Err: fmt.Errorf("%w: SR path is not a directory", ErrInvalidArgument)}
	} else if sameDir(fsys, stagingDir, srDir, fi) {
		// The renaming to UUIDs would happen in the SR itself, where an SR
		// scan sees half-imported files, and the move could never succeed.
		return ImportResult{}, &StagingError{Op: "import", Step: "inspect", Dir: srDir,
			Err: fmt.Errorf("%w: the staging directory %s is the SR directory", ErrInvalidArgument, stagingDir)}
	}

	// Fresh UUIDs, unused in both directories.
	res := ImportResult{Chain: make([]UUID, n), Files: make([]string, n)}
	staged := make([]string, n) // <staging>/<uuid>.vhd
	seen := map[UUID]bool{}
	for k := 0; k < n; k++ {
		u, err := NewUUID(o.Rand)
		if err != nil {
			return fail("rename", "", fmt.Errorf("drawing a UUID: %w", err))
		}
		if seen[u] {
			return fail("rename", "", fmt.Errorf("%w: the UUID source repeated %s", ErrInvalidArgument, u))
		}
		seen[u] = true
		res.Chain[k] = u
		staged[k] = path.Join(stagingDir, u.String()+".vhd")
		res.Files[k] = path.Join(srDir, u.String()+".vhd")
		for _, p := range []string{staged[k], res.Files[k]} {
			if err := mustNotExist(fsys, p); err != nil {
				return fail("rename", p, err)
			}
		}
	}
	res.Leaf = res.Chain[0]

	// Rename k.vhd to <uuid>.vhd inside the staging directory.
	for k := 0; k < n; k++ {
		if err := fsys.Rename(path.Join(stagingDir, seq[k]), staged[k]); err != nil {
			for j := k - 1; j >= 0; j-- {
				_ = fsys.Rename(staged[j], path.Join(stagingDir, seq[j]))
			}
			return fail("rename", seq[k], err)
		}
	}
	// From here a failure gives the staged files their sequence names back
	// (relinked or not), so the set can be inspected and imported again.
	unrename := func(step, name string, err error) (ImportResult, error) {
		var rollback []error
		for k := 0; k < n; k++ {
			if rerr := fsys.Rename(staged[k], path.Join(stagingDir, seq[k])); rerr != nil {
				rollback = append(rollback, rerr)
			}
		}
		if len(rollback) > 0 {
			err = errors.Join(append([]error{err, errors.New("restoring the staging names failed")}, rollback...)...)
		}
		return fail(step, name, err)
	}
	// Relink from the base up.
	for k := n - 2; k >= 0; k-- {
		if err := SetParent(fsys, staged[k], staged[k+1]); err != nil {
			return unrename("relink", seq[k], err)
		}
	}
	// Validate every file and the chain as a whole.
	for k := 0; k < n; k++ {
		if err := ctx.Err(); err != nil {
			return unrename("validate", "", err)
		}
		if err := CheckWithOptions(fsys, staged[k], o.Check); err != nil {
			return unrename("validate", seq[k], err)
		}
	}
	if err := verifyChain(fsys, staged, o.MaxDepth); err != nil {
		return unrename("validate", seq[0], err)
	}
	if err := ctx.Err(); err != nil {
		return unrename("validate", "", err)
	}

	// Move into the SR, base first, so a leaf never lands without its
	// parents; roll back on failure.
	for k := n - 1; k >= 0; k-- {
		err := mustNotExist(fsys, res.Files[k])
		if err == nil {
			err = fsys.Rename(staged[k], res.Files[k])
		}
		if err != nil {
			var rollback []error
			for j := k + 1; j < n; j++ {
				if rerr := fsys.Rename(res.Files[j], staged[j]); rerr != nil {
					rollback = append(rollback, rerr)
				}
			}
			if len(rollback) > 0 {
				err = errors.Join(append([]error{err, errors.New("rollback failed")}, rollback...)...)
			}
			_, err = unrename("move", seq[k], err)
			err.(*StagingError).Dir = srDir
			return ImportResult{}, err
		}
	}
	log.Debug("vhd import: chain moved into the SR", "sr", srDir, "leaf", res.Leaf, "depth", n)
	return res, nil
}

// sequence lists stagingDir and returns the staged file names in sequence
// order (leaf first), applying the legacy and lone-file rules.
func sequence(fsys FS, dir string, maxDepth int) ([]string, error) {
	ents, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	byNum := map[int]string{}
	var legacy []string
	var others []string // *.vhd names that are neither numbers nor legacy
	var badNum []error
	for _, e := range ents {
		name := e.Name()
		if err := singleElement("import", dir, name); err != nil {
			return nil, err
		}
		if !strings.HasSuffix(name, ".vhd") || name == SwapName {
			continue
		}
		if !e.Type().IsRegular() {
			what := "not a regular file"
			if e.Type()&fs.ModeSymlink != 0 {
				what = "a symbolic link"
			}
			return nil, &NameError{Op: "import", Dir: dir, Name: name, Reason: what}
		}
		if isLegacy(name) {
			legacy = append(legacy, name)
			continue
		}
		k, err := parseSeq(name, maxDepth)
		if err != nil {
			// Kept aside: a lone file of any name is still the leaf.
			others = append(others, name)
			badNum = append(badNum, err)
			continue
		}
		byNum[k] = name
	}
	total := len(byNum) + len(legacy) + len(others)
	switch {
	case total == 0:
		return nil, ErrEmptyStaging
	case total == 1 && len(byNum)+len(others) == 1:
		// A lone VHD of any name is the leaf.
		for _, name := range byNum {
			return []string{name}, nil
		}
		return []string{others[0]}, nil
	case len(others) > 0:
		for _, err := range badNum {
			if errors.Is(err, ErrChainTooDeep) {
				return nil, err
			}
		}
		return nil, badNum[0]
	}
	if len(legacy) > 0 {
		if len(byNum) > 0 {
			return nil, fmt.Errorf("%w: legacy names %v mixed with sequence numbers", ErrStagingName, legacy)
		}
		// snap, image, base in that order, numbered from 0 as found.
		var out []string
		for _, l := range legacyNames {
			for _, name := range legacy {
				if name == l {
					out = append(out, name)
				}
			}
		}
		return out, nil
	}
	out := make([]string, len(byNum))
	for k := range out {
		name, ok := byNum[k]
		if !ok {
			return nil, fmt.Errorf("%w: expected %d.vhd among %d staged files", ErrSequenceGap, k, len(byNum))
		}
		out[k] = name
	}
	return out, nil
}

func isLegacy(name string) bool {
	for _, l := range legacyNames {
		if name == l {
			return true
		}
	}
	return false
}

// parseSeq parses "<k>.vhd" strictly: decimal digits, no sign, no leading
// zero, below maxDepth.
func parseSeq(name string, maxDepth int) (int, error) {
	stem := strings.TrimSuffix(name, ".vhd")
	if stem == "" || len(stem) > 1 && stem[0] == '0' {
		return 0, fmt.Errorf("%w: %q is not a sequence number", ErrStagingName, name)
	}
	for i := 0; i < len(stem); i++ {
		if stem[i] < '0' || stem[i] > '9' {
			return 0, fmt.Errorf("%w: %q is not a sequence number", ErrStagingName, name)
		}
	}
	k, err := strconv.Atoi(stem)
	if err != nil || k >= maxDepth {
		return 0, fmt.Errorf("%w: sequence number in %q is past the chain limit %d", ErrChainTooDeep, name, maxDepth)
	}
	return k, nil
}

// singleElement refuses a directory entry name that is not one plain path
// element (a hostile FS could return "..", "a/b" or "/etc/x").
func singleElement(op, dir, name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return &NameError{Op: op, Dir: dir, Name: name, Reason: "not a file name"}
	case strings.ContainsAny(name, "/\\\x00"):
		return &NameError{Op: op, Dir: dir, Name: name, Reason: "name holds a path separator or NUL"}
	}
	return nil
}

// inspect opens every staged file before anything changes: each must be a
// valid VHD (parent links aside), the leaf not hidden, every file but the
// base differencing, the base not, and (unless TrustOrder) each child must
// name the next file's UUID as its parent's.
func inspect(fsys FS, dir string, seq []string, o *ImportOptions) error {
	fail := func(name string, err error) error {
		return &StagingError{Op: "import", Step: "inspect", Dir: dir, Name: name, Err: err}
	}
	ids := make([]UUID, len(seq))
	parents := make([]UUID, len(seq))
	for k, name := range seq {
		p := path.Join(dir, name)
		// Open validates the structure but falls back to the footer copy
		// when the primary footer is damaged; vhd-util check (run in full
		// once the chain is relinked) would refuse that, so look now.
		if err := primaryFooter(fsys, p); err != nil {
			return fail(name, err)
		}
		d, err := Open(fsys, p)
		if err != nil {
			return fail(name, err)
		}
		ids[k], parents[k] = d.UUID(), d.ParentUUID()
		typ, hidden := d.Type(), d.Hidden()
		d.Close()
		switch base := k == len(seq)-1; {
		case k == 0 && hidden:
			return fail(name, ErrHiddenLeaf)
		case !base && typ != DiskDifferencing:
			return fail(name, fmt.Errorf("%w: %s is %s but %s follows it", ErrNotDifferencing, name, typ, seq[k+1]))
		case base && typ == DiskDifferencing:
			return fail(name, fmt.Errorf("%w: the base %s is a differencing disk", ErrChainIncomplete, name))
		}
	}
	if o.TrustOrder {
		return nil
	}
	for k := 0; k+1 < len(seq); k++ {
		if parents[k] != ids[k+1] {
			return fail(seq[k], &ParentError{Child: seq[k], Parent: seq[k+1], Want: parents[k], Got: ids[k+1], Err: ErrParentMismatch})
		}
	}
	return nil
}

// primaryFooter reads and decodes the footer at the end of name.
func primaryFooter(fsys FS, name string) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return &NameError{Op: "import", Dir: path.Dir(name), Name: path.Base(name), Reason: "not a regular file"}
	}
	switch n := linkCount(fi); {
	case n == 0:
		return fmt.Errorf("%w: %s: the file system reports no link count, so whether the file is still linked into another SR, whose file relinking it would rewrite too, cannot be told", ErrLinkCountUnknown, name)
	case n > 1:
		return fmt.Errorf("%w: %s has %d links, so it is still another directory's file too (the SR it was staged from, say), and relinking it would rewrite that file's headers as well; copy the staged files into a staging directory of their own (as rsync does between hosts), or import on the destination host", ErrHardLinked, name, n)
	}
	if fi.Size() < FooterSize {
		return &FormatError{File: name, Field: "footer", Offset: 0, Reason: "file shorter than a footer", Err: ErrTruncated}
	}
	b := make([]byte, FooterSize)
	if _, err := f.ReadAt(b, fi.Size()-FooterSize); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	var ft Footer
	if err := ft.UnmarshalBinary(b); err != nil {
		return withFile(err, name, fi.Size()-FooterSize)
	}
	return nil
}

// linkCount returns the number of hard links fi's Sys() reports, or 0 when
// it does not say. It reads a field named Nlink of Sys() (or of what Sys()
// points to), any integer type: a syscall.Stat_t on Unix, and what an FS
// over another transport reports the same way.
func linkCount(fi fs.FileInfo) uint64 {
	v := reflect.ValueOf(fi.Sys())
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("Nlink")
	if !f.IsValid() {
		return 0
	}
	switch f.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return f.Uint()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := f.Int(); n > 0 {
			return uint64(n)
		}
	}
	return 0
}

// verifyChain opens the chain from names[0] through its parent locators and
// requires it to be exactly names, in order.
func verifyChain(fsys FS, names []string, maxDepth int) error {
	c, err := OpenChainWithOptions(fsys, names[0], &ChainOptions{MaxDepth: maxDepth})
	if err != nil {
		return err
	}
	defer c.Close()
	disks := c.Disks()
	if len(disks) != len(names) {
		return fmt.Errorf("%w: the chain opened through its locators has %d disks, %d were staged", ErrChainIncomplete, len(disks), len(names))
	}
	for k, d := range disks {
		if path.Clean(d.Name()) != path.Clean(names[k]) {
			return fmt.Errorf("%w: disk %d of the chain is %s, not %s", ErrChainIncomplete, k, d.Name(), names[k])
		}
	}
	return nil
}

// sameDir reports whether the directories a and b (b described by bi) are
// one: the same cleaned name, or, where the FS gives local file details,
// the same file.
func sameDir(fsys FS, a, b string, bi fs.FileInfo) bool {
	if path.Clean(a) == path.Clean(b) {
		return true
	}
	ai, err := fsys.Stat(a)
	return err == nil && os.SameFile(ai, bi)
}

// mustNotExist fails unless name is missing.
func mustNotExist(fsys FS, name string) error {
	_, err := fsys.Stat(name)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrExists, name)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return err
	}
}

// discardHandler is a slog.Handler that drops everything (slog.DiscardHandler
// arrived after Go 1.23).
type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }
