/* Where the release workflow (.github/workflows/release.yml) publishes the chartreuse image:
 * the default chartreuseImage.repository. The workflow, the README and the tests use this
 * same name (tests/test_release.py checks they agree). */
#ifndef CR_IMAGE_H
#define CR_IMAGE_H

#define CR_IMAGE_REPOSITORY "ghcr.io/wiremind/chartreuse"

#endif
