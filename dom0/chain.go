package dom0

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"

	"github.com/hashicorp/go-multierror"

	"github.com/xenflow/xenflow/vhd"
)

// ChainLabel names a disk chain in transit, as Nova labelled it: the
// instance, and which of its disks.
type ChainLabel struct {
	// Instance is the instance's UUID.
	Instance vhd.UUID
	// Ephemeral is 0 for the root disk's chain and N (1, 2, ...) for the
	// instance's N-th ephemeral disk.
	Ephemeral int
}

// String gives the label Nova used in staging paths: "instance<uuid>", or
// "instance<uuid>_ephemeral_<N>".
func (l ChainLabel) String() string {
	if l.Ephemeral > 0 {
		return "instance" + l.Instance.String() + "_ephemeral_" + strconv.Itoa(l.Ephemeral)
	}
	return "instance" + l.Instance.String()
}

func (l ChainLabel) check() error {
	if l.Instance.IsZero() {
		return fmt.Errorf("%w: null instance UUID", ErrBadName)
	}
	if l.Ephemeral < 0 || l.Ephemeral > 1<<16 {
		return fmt.Errorf("%w: ephemeral disk number %d", ErrBadName, l.Ephemeral)
	}
	return nil
}

// SendRequest says which chain to send where.
type SendRequest struct {
	// Label names the chain in transit (and its staging directories).
	Label ChainLabel
	// SrcSR is the SR holding the chain on the source host.
	SrcSR vhd.UUID
	// Leaf is the VDI whose chain is sent: <SrcSR>/<Leaf>.vhd and its
	// ancestors, found through their parent locators.
	Leaf vhd.UUID
	// DstSR is the SR the chain is for on the destination host.
	DstSR vhd.UUID
	// FirstSeq and Depth select part of the chain, as in Nova's resize:
	// send the immutable ancestors while the instance runs (Leaf = the
	// snapshot, FirstSeq 1), then the leaf alone after power-off (Depth 1,
	// FirstSeq 0). Zero values send the whole chain as 0..n-1.
	FirstSeq, Depth int
}

// ChainOptions tunes SendChain, ImportChain and MoveChain. Nil means the
// defaults.
type ChainOptions struct {
	// Transfer tunes the copy (progress callback, verification...).
	Transfer *TransferOptions
	// DestStagingRoot, when set (e.g. "/images", Nova's layout), puts the
	// destination staging directory at <DestStagingRoot>/<label>. It must be
	// on the same file system as the destination SR, since the import
	// renames files from there into the SR. By default the destination
	// staging directory is inside the destination SR (see StagingDirs).
	DestStagingRoot string
	// KeepPartialOnFailure leaves the destination staging directory in place
	// when a send fails for another reason than ctx's cancellation, so that
	// the next SendChain of the same label resumes the files part-way; the
	// caller runs CleanupChain when it gives up. By default both staging
	// directories are removed on every failure.
	KeepPartialOnFailure bool
	// Direct, when set, has the source host push the files to the
	// destination itself with scp (TransferDirect) instead of relaying
	// them through this process: for hosts that trust each other.
	Direct *DirectOptions
	// Import tunes the chain assembly on the destination.
	Import *vhd.ImportOptions
	// Logger receives debug lines; nil discards them.
	Logger *slog.Logger
}

func (o *ChainOptions) logger() *slog.Logger {
	if o != nil && o.Logger != nil {
		return o.Logger
	}
	return slog.New(discardHandler{})
}

// StagingDirs returns the two staging directories of a chain in transit:
// on the source, <SrcSR>/xenflow-send-<label> (inside the SR, so the hard
// links cost nothing; an SR scan only looks at the SR's top level, so
// nothing there is mistaken for a VDI); on the destination,
// <DstSR>/xenflow-receive-<label>, or <DestStagingRoot>/<label>.
func StagingDirs(req SendRequest, opts *ChainOptions) (send, receive string, err error) {
	if err := req.Label.check(); err != nil {
		return "", "", err
	}
	srcSR, err := SRPath(req.SrcSR)
	if err != nil {
		return "", "", err
	}
	send = srcSR + "/xenflow-send-" + req.Label.String()
	receive, err = receiveDir(req.Label, req.DstSR, opts)
	return send, receive, err
}

func receiveDir(label ChainLabel, dstSR vhd.UUID, opts *ChainOptions) (string, error) {
	if err := label.check(); err != nil {
		return "", err
	}
	if opts != nil && opts.DestStagingRoot != "" {
		if err := checkAbs(opts.DestStagingRoot); err != nil {
			return "", fmt.Errorf("dom0: DestStagingRoot: %w", err)
		}
		return opts.DestStagingRoot + "/" + label.String(), nil
	}
	dir, err := SRPath(dstSR)
	if err != nil {
		return "", err
	}
	return dir + "/xenflow-receive-" + label.String(), nil
}

// SendChain does the source half of Nova's transfer_vhd, from the
// controller: it hard-links the chain into a staging directory inside the
// source SR (<seq>.vhd, 0 being the leaf), copies those files into the
// destination staging directory with Transfer (verified, never under a
// final name before complete), and removes the source staging directory.
// Sends of parts of one chain (FirstSeq, Depth) accumulate in the same
// destination staging directory until ImportChain.
//
// On failure both staging directories are removed (unless
// KeepPartialOnFailure), the SR files on both hosts are untouched, and the
// error lists every cleanup that failed too. A destination staging
// directory left behind because the destination could not be reached is
// resumed by the next SendChain of the same label.
func SendChain(ctx context.Context, src, dst Host, req SendRequest, opts *ChainOptions) (results []TransferResult, err error) {
	sendDir, recvDir, err := StagingDirs(req, opts)
	if err != nil {
		return nil, err
	}
	srcSR, _ := SRPath(req.SrcSR)
	if req.Leaf.IsZero() {
		return nil, fmt.Errorf("%w: null leaf VDI UUID", ErrBadName)
	}
	if _, err := SRPath(req.DstSR); err != nil {
		return nil, err
	}
	log := opts.logger()
	var topts *TransferOptions
	if opts != nil {
		topts = opts.Transfer
	}

	defer func() {
		var cleanup *multierror.Error
		if cerr := src.RemoveAll(sendDir); cerr != nil {
			cleanup = multierror.Append(cleanup, fmt.Errorf("remove source staging: %w", cerr))
		}
		if err != nil && (opts == nil || !opts.KeepPartialOnFailure || ctx.Err() != nil) {
			if cerr := dst.RemoveAll(recvDir); cerr != nil {
				cleanup = multierror.Append(cleanup, fmt.Errorf("remove destination staging: %w", cerr))
			}
		}
		if cleanup != nil {
			log.Debug("dom0: staging cleanup failed", "err", cleanup)
			if err == nil {
				err = cleanup.ErrorOrNil()
			} else {
				err = multierror.Append(err, cleanup.Errors...)
			}
		}
	}()

	// A source staging directory left by an attempt that died holds only
	// hard links: removing it loses nothing.
	if err := src.RemoveAll(sendDir); err != nil {
		return nil, err
	}
	staged, err := vhd.Stage(ctx, src, srcSR, req.Leaf, sendDir, &vhd.StageOptions{FirstSeq: req.FirstSeq, Depth: req.Depth, Logger: opts.logger()})
	if err != nil {
		return nil, err
	}
	if err := dst.MkdirAll(recvDir, 0o700); err != nil {
		return nil, err
	}
	files := make([]FileCopy, len(staged))
	for i, s := range staged {
		// The destination name is made from the sequence number, never
		// from a name read on a host.
		if s.Seq < 0 || s.Seq > vhd.DefaultMaxDepth || path.Dir(s.Name) != sendDir {
			return nil, fmt.Errorf("%w: staged file %q (seq %d)", ErrBadName, clip(s.Name), s.Seq)
		}
		files[i] = FileCopy{Src: sendDir + "/" + strconv.Itoa(s.Seq) + ".vhd", Dst: recvDir + "/" + strconv.Itoa(s.Seq) + ".vhd"}
	}
	log.Debug("dom0: sending chain", "label", req.Label.String(), "from", src.String(), "to", dst.String(), "files", len(files))
	if opts != nil && opts.Direct != nil {
		return TransferDirect(ctx, src, dst, files, *opts.Direct, topts)
	}
	return Transfer(ctx, src, dst, files, topts)
}

// ImportChain does the destination half, Nova's move_vhds_into_sr: it
// assembles the staged chain with vhd.Import over the destination host's
// files (new UUIDs, relinked parents, every file checked, the leaf not
// hidden, then renamed into the SR, base first), and removes the staging
// directory, on success and on failure. vhd.Import refuses a staging set
// with a gap, a hidden leaf or a corrupt file before anything moves into
// the SR.
func ImportChain(ctx context.Context, dst Host, label ChainLabel, dstSR vhd.UUID, opts *ChainOptions) (res vhd.ImportResult, err error) {
	recvDir, err := receiveDir(label, dstSR, opts)
	if err != nil {
		return res, err
	}
	srDir, err := SRPath(dstSR)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := dst.RemoveAll(recvDir); cerr != nil {
			err = multierror.Append(err, fmt.Errorf("remove destination staging: %w", cerr)).ErrorOrNil()
		}
	}()
	var iopts *vhd.ImportOptions
	if opts != nil {
		iopts = opts.Import
	}
	if iopts == nil || iopts.Logger == nil {
		o := vhd.ImportOptions{}
		if iopts != nil {
			o = *iopts
		}
		o.Logger = opts.logger()
		iopts = &o
	}
	return vhd.Import(ctx, dst, recvDir, srDir, iopts)
}

// MoveChain sends a whole chain and imports it: SendChain then ImportChain.
// It returns the new UUIDs on the destination (leaf first). On failure
// nothing is left in either staging area and nothing new in the
// destination SR; the source SR is never modified.
func MoveChain(ctx context.Context, src, dst Host, req SendRequest, opts *ChainOptions) (vhd.ImportResult, error) {
	if req.FirstSeq != 0 || req.Depth != 0 {
		return vhd.ImportResult{}, errors.New("dom0: MoveChain moves whole chains: FirstSeq and Depth must be 0")
	}
	if _, err := SendChain(ctx, src, dst, req, opts); err != nil {
		return vhd.ImportResult{}, err
	}
	return ImportChain(ctx, dst, req.Label, req.DstSR, opts)
}

// CleanupChain removes both staging directories of a chain in transit, for
// a caller abandoning a move (or after KeepPartialOnFailure). It is
// idempotent and reports every failure.
func CleanupChain(ctx context.Context, src, dst Host, req SendRequest, opts *ChainOptions) error {
	sendDir, recvDir, err := StagingDirs(req, opts)
	if err != nil {
		return err
	}
	var errs *multierror.Error
	if src != nil {
		if err := src.RemoveAll(sendDir); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	if dst != nil {
		if err := dst.RemoveAll(recvDir); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	return errs.ErrorOrNil()
}
