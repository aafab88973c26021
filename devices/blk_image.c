/* SPDX-License-Identifier: MIT */
/* devices/blk_image.c - opening, locking and sizing disk images (blk_image.h). */
#include "devices/blk_image.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int blk_image_lock(struct blk_image *img, struct err *e)
{
	struct flock fl = { .l_type = img->readonly && !img->copying ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };

	if (img->locked)
		return 0;
	if (fcntl(img->fd, F_OFD_SETLK, &fl) == 0) {
		img->locked = true;
		return 0;
	}
	if (errno != EAGAIN && errno != EACCES)
		return err_errno(e, -errno, "disk '%s': cannot lock it", img->path);
	/* OFD locks have no owner process (F_OFD_GETLK reports pid -1); a
	 * classic POSIX lock's holder is named when there is one */
	struct flock who = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	char holder[64] = "another process";
	if (fcntl(img->fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK && who.l_pid > 0)
		snprintf(holder, sizeof(holder), "process %d", (int)who.l_pid);
	if (img->copying)
		return err_set(e, -EBUSY, "disk '%s' is in use by %s (the source tern itself, on storage both hosts "
					  "share?): a migration that copies the disk must write it; on shared storage, "
					  "migrate without --copy-disks", img->path, holder);
	if (img->readonly)
		return err_set(e, -EBUSY, "disk '%s' is being written by %s (another tern?): it holds a write lock on "
					  "the image, so tern does not open it, even read-only", img->path, holder);
	return err_set(e, -EBUSY, "disk '%s' is in use by %s (another tern?): it holds a lock on the image, so "
				  "tern does not open it read-write", img->path, holder);
}

void blk_image_unlock(struct blk_image *img)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	if (img->locked && fcntl(img->fd, F_OFD_SETLK, &fl) < 0)
		pr_warn("disk '%s': cannot let go of its lock: %s", img->path, strerror(errno));
	img->locked = false;
}

static int size_image(struct blk_image *img, struct err *e)
{
	struct stat st;

	if (fstat(img->fd, &st) < 0)
		return err_errno(e, -errno, "disk '%s'", img->path);
	if (S_ISBLK(st.st_mode)) {
		img->block_device = true;
		if (ioctl(img->fd, BLKGETSIZE64, &img->size) < 0)
			return err_errno(e, -errno, "disk '%s': block device size", img->path);
	} else if (S_ISREG(st.st_mode)) {
		img->size = (uint64_t)st.st_size;
	} else {
		return err_set(e, -EINVAL, "disk '%s' is neither a regular file nor a block device", img->path);
	}
	if (img->size < BLK_SECTOR)
		return err_set(e, -EINVAL, "disk '%s' is smaller than one %u-byte sector", img->path, BLK_SECTOR);
	if (img->size % BLK_SECTOR)
		pr_warn("disk '%s': its last %llu bytes are not a whole sector and are not used", img->path,
			(unsigned long long)(img->size % BLK_SECTOR));
	img->size -= img->size % BLK_SECTOR;
	return 0;
}

static int open_image(struct blk_image *img, const struct disk_config *c, int flags, struct err *e)
{
	img->align = 1;
	snprintf(img->path, sizeof(img->path), "%s", c->path);
	if (c->cache == DISK_CACHE_NONE) {
		img->fd = open(c->path, flags | O_DIRECT);
		if (img->fd >= 0) {
			img->direct = true;
			img->align = 4096; /* covers every logical block size in use */
		} else if (errno == EINVAL) {
			pr_warn("disk '%s': cache=none, but its filesystem does not allow O_DIRECT: using the page cache "
				"(flushes still reach the disk)", c->path);
		} else {
			return err_errno(e, -errno, "disk '%s'", c->path);
		}
	}
	if (img->fd < 0)
		img->fd = open(c->path, flags);
	return img->fd < 0 ? err_errno(e, -errno, "disk '%s'", c->path) : 0;
}

int blk_image_open(struct blk_image *img, const struct disk_config *c, bool lock, struct err *e)
{
	int flags = (c->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	int r;

	memset(img, 0, sizeof(*img));
	img->fd = img->copy_fd = -1;
	img->readonly = c->readonly;
	if ((r = open_image(img, c, flags, e)) < 0)
		return r;
	if ((lock && (r = blk_image_lock(img, e)) < 0) || (r = size_image(img, e)) < 0) {
		blk_image_close(img);
		return r;
	}
	return 0;
}

/* The target's size: a new (or empty) file grows to it, anything else must
 * have it already. */
static int size_target(struct blk_image *img, uint64_t size, struct err *e)
{
	struct stat st;

	if (fstat(img->fd, &st) < 0)
		return err_errno(e, -errno, "disk '%s'", img->path);
	if (S_ISREG(st.st_mode) && st.st_size == 0 && ftruncate(img->fd, (off_t)size) < 0)
		return err_errno(e, -errno, "disk '%s': cannot make it %llu bytes", img->path, (unsigned long long)size);
	int r = size_image(img, e);
	if (r == 0 && img->size != size)
		r = err_set(e, -EINVAL, "disk '%s' has %llu bytes, the source's %llu: give an image of that size, an "
					"empty file or a path that does not exist (tern creates it)", img->path,
			    (unsigned long long)img->size, (unsigned long long)size);
	return r;
}

int blk_image_open_target(struct blk_image *img, const struct disk_config *c, uint64_t size, struct err *e)
{
	char self[64];
	int r;

	memset(img, 0, sizeof(*img));
	img->fd = img->copy_fd = -1;
	img->readonly = c->readonly;
	img->copying = true;
	if (size < BLK_SECTOR || size % BLK_SECTOR)
		return err_set(e, -EPROTO, "migration: the source's disk '%s' has %llu bytes", c->path,
			       (unsigned long long)size);
	r = open_image(img, c, O_RDWR | O_CLOEXEC, e);
	if (r == -ENOENT) {
		/* created apart from the real open: a failed O_DIRECT open may
		 * leave the file behind */
		int fd = open(c->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		memset(e, 0, sizeof(*e));
		if (fd < 0)
			return err_errno(e, -errno, "disk '%s': cannot create it", c->path);
		close(fd);
		img->created = true;
		r = open_image(img, c, O_RDWR | O_CLOEXEC, e);
	}
	if (r == 0)
		r = blk_image_lock(img, e);
	if (r == 0)
		r = size_target(img, size, e);
	if (r == 0) {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", img->fd);
		img->copy_fd = open(self, O_WRONLY | O_CLOEXEC);
		if (img->copy_fd < 0)
			r = err_errno(e, -errno, "disk '%s': cannot open it again to copy into it", img->path);
	}
	if (r < 0) {
		blk_image_abandon(img);
		blk_image_close(img);
	}
	return r;
}

int blk_image_copy_done(struct blk_image *img, struct err *e)
{
	if (!img->copying)
		return 0;
	if (fdatasync(img->copy_fd) < 0)
		return err_errno(e, -errno, "disk '%s': flushing what the migration copied", img->path);
	close(img->copy_fd);
	img->copy_fd = -1;
	img->copying = false;
	if (img->readonly && img->locked) {
		/* a read lock replaces the write lock in one step */
		img->locked = false;
		return blk_image_lock(img, e);
	}
	return 0;
}

void blk_image_abandon(struct blk_image *img)
{
	struct stat mine, named;

	if (!img->created || img->fd < 0)
		return;
	if (fstat(img->fd, &mine) == 0 && stat(img->path, &named) == 0 && mine.st_dev == named.st_dev &&
	    mine.st_ino == named.st_ino && unlink(img->path) == 0)
		pr_info("disk '%s': removed the image this failed migration had created", img->path);
	img->created = false;
}

void blk_image_close(struct blk_image *img)
{
	if (img->copy_fd >= 0)
		close(img->copy_fd);
	if (img->fd >= 0)
		close(img->fd); /* and the lock with it */
	img->fd = img->copy_fd = -1;
	img->locked = false;
}
