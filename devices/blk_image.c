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
	struct flock fl = { .l_type = img->readonly ? F_RDLCK : F_WRLCK, .l_whence = SEEK_SET };

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

int blk_image_open(struct blk_image *img, const struct disk_config *c, bool lock, struct err *e)
{
	int flags = (c->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	int r;

	memset(img, 0, sizeof(*img));
	img->fd = -1;
	img->readonly = c->readonly;
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
	if (img->fd < 0)
		return err_errno(e, -errno, "disk '%s'", c->path);
	if ((lock && (r = blk_image_lock(img, e)) < 0) || (r = size_image(img, e)) < 0) {
		blk_image_close(img);
		return r;
	}
	return 0;
}

void blk_image_close(struct blk_image *img)
{
	if (img->fd >= 0)
		close(img->fd); /* and the lock with it */
	img->fd = -1;
	img->locked = false;
}
