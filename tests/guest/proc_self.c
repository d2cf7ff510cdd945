/* /proc/self/exe and /proc/self/auxv are the program's own; the descriptor limit is enforced. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <elf.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
    (void)argc;
    /* /proc/self/exe opens this program. */
    struct stat a, b;
    int fd = open("/proc/self/exe", O_RDONLY);
    fstat(fd, &a);
    stat(argv[0], &b);
    printf("exe is the program: %d\n", fd >= 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    close(fd);
    /* /proc/self/auxv agrees with getauxval. */
    fd = open("/proc/self/auxv", O_RDONLY);
    Elf64_auxv_t v;
    int agree = 1, seen = 0;
    while (read(fd, &v, sizeof v) == sizeof v && v.a_type != AT_NULL) {
        if (v.a_type == AT_PAGESZ || v.a_type == AT_PHDR || v.a_type == AT_ENTRY || v.a_type == AT_PHNUM) {
            agree &= getauxval(v.a_type) == v.a_un.a_val;
            seen++;
        }
    }
    close(fd);
    printf("auxv agrees: %d (%d entries)\n", agree, seen);
    /* The descriptor limit is enforced. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    int r = dup2(1, (int)rl.rlim_cur);
    printf("dup2 at the limit: %d %s\n", r, r < 0 && errno == EBADF ? "EBADF" : "?");
    r = fcntl(1, F_DUPFD, (int)rl.rlim_cur);
    printf("F_DUPFD at the limit: %d %s\n", r, r < 0 && errno == EINVAL ? "EINVAL" : "?");
    int kept = open("/dev/null", O_RDONLY);
    printf("open gives %d\n", kept);
    return 0;
}
