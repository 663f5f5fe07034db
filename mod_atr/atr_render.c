/* stub: to be implemented */
#include "atr_render.h"
